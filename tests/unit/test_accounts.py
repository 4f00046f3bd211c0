"""The ids reserved for system accounts."""

import uuid

from app.domain.accounts import CHAIN_USER_ID, ISSUANCE_USER_ID, PLATFORM_USER_ID, is_reserved


def test_the_system_accounts_and_the_range_kept_for_future_ones_are_reserved() -> None:
    for user_id in (PLATFORM_USER_ID, ISSUANCE_USER_ID, CHAIN_USER_ID, uuid.UUID(int=0)):
        assert is_reserved(user_id)
    assert is_reserved(uuid.UUID("00000000-0000-0000-0000-00000000ffff"))
    assert not is_reserved(uuid.UUID("00000000-0000-0000-0000-000000010000"))


def test_no_random_user_id_is_reserved() -> None:
    assert not any(is_reserved(uuid.uuid4()) for _ in range(1000))
