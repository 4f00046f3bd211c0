"""Configuration from the environment; development secrets refused outside development."""

import base64
import secrets

import pytest

from app.config import (
    DEV_JWT_SECRET,
    DEV_WALLET_DATA_KEY,
    Config,
    InsecureConfigError,
    insecure_settings,
    refuse_insecure,
)

GOOD_JWT = secrets.token_urlsafe(32)
GOOD_KEY = "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()
SHORT_KEY = "k0:" + base64.b64encode(secrets.token_bytes(16)).decode()
PRODUCTION = {"APP_ENV": "production", "JWT_SECRET": GOOD_JWT, "WALLET_DATA_KEY": GOOD_KEY}


def test_development_runs_on_the_published_defaults() -> None:
    config = Config.from_env({"APP_ENV": "development", "WEBHOOK_URL": "http://127.0.0.1/hook"})
    assert config.jwt_secret == DEV_JWT_SECRET and config.wallet_data_key == DEV_WALLET_DATA_KEY
    assert insecure_settings(config) == []
    refuse_insecure(config)


@pytest.mark.parametrize("app_env", [None, "production", "staging", "Development", ""])
def test_without_an_explicit_development_env_unset_secrets_refuse_to_start(app_env) -> None:
    env = {} if app_env is None else {"APP_ENV": app_env}
    with pytest.raises(InsecureConfigError) as refused:
        refuse_insecure(Config.from_env(env))
    message = str(refused.value)
    assert "JWT_SECRET is a development value" in message
    assert "WALLET_DATA_KEY is a development value" in message
    assert "APP_ENV=development" in message  # says how to run locally


def test_production_with_real_secrets_starts() -> None:
    config = Config.from_env(
        {**PRODUCTION, "WEBHOOK_URL": "https://hooks.example", "WEBHOOK_SECRET": "w" * 32}
    )
    assert config.app_env == "production"
    assert insecure_settings(config) == []
    refuse_insecure(config)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"JWT_SECRET": DEV_JWT_SECRET}, "JWT_SECRET is a development value"),
        ({"JWT_SECRET": ""}, "JWT_SECRET is shorter than 32 bytes"),
        ({"JWT_SECRET": "s" * 31}, "JWT_SECRET is shorter than 32 bytes"),
        ({"WALLET_DATA_KEY": DEV_WALLET_DATA_KEY}, "WALLET_DATA_KEY is a development value"),
        (  # the development key under another id, kept for unsealing, is still published
            {"WALLET_DATA_KEY": f"{GOOD_KEY},old:{DEV_WALLET_DATA_KEY.partition(':')[2]}"},
            "WALLET_DATA_KEY is a development value",
        ),
        ({"WALLET_DATA_KEY": SHORT_KEY}, "WALLET_DATA_KEY is shorter than 32 bytes"),
        ({"WALLET_DATA_KEY": "k1:not base64!"}, "WALLET_DATA_KEY entry 'k1' is not"),
        ({"WALLET_DATA_KEY": " "}, "WALLET_DATA_KEY is empty"),
        ({"WEBHOOK_URL": "https://hooks.example"}, "WEBHOOK_SECRET is missing or shorter"),
        (
            {"WEBHOOK_URL": "https://hooks.example", "WEBHOOK_SECRET": "w" * 31},
            "WEBHOOK_SECRET is missing or shorter",
        ),
    ],
)
def test_outside_development_each_weak_secret_is_refused_by_name(changes, reason) -> None:
    config = Config.from_env({**PRODUCTION, **changes})
    [problem] = insecure_settings(config)
    assert reason in problem
    with pytest.raises(InsecureConfigError, match=reason):
        refuse_insecure(config)


def test_new_settings_are_read_from_the_environment() -> None:
    config = Config.from_env(
        {
            "TRUSTED_PROXIES": "2",
            "JWT_ISSUER": "https://idp.example",
            "JWT_AUDIENCE": "wallet",
            "JWT_MAX_LIFETIME_SECONDS": "3600",
        }
    )
    assert config.trusted_proxies == 2
    assert (config.jwt_issuer, config.jwt_audience) == ("https://idp.example", "wallet")
    assert config.jwt_max_lifetime_seconds == 3600
    defaults = Config.from_env({})
    assert defaults.trusted_proxies == 0 and defaults.jwt_max_lifetime_seconds == 86400
    assert (defaults.jwt_issuer, defaults.jwt_audience) == ("token-wallet", "token-wallet-api")
