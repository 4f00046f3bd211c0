"""Fuzzes every operation of the OpenAPI document with schemathesis, the app in-process over WSGI,
once with a user's token, once with a service's and once with an admin's.

Whatever a caller sends — generated bodies, query strings, path ids and headers (Idempotency-Key
and Prefer where documented), valid or not — the API never answers 5xx, every 4xx is problem+json
with its `code`, `status` and `title`, and every answer is one the document describes (status
code, content type, headers, body schema), by schemathesis' own checks plus `is_problem_json`.

Each operation runs schemathesis' examples, coverage and fuzzing phases as one Hypothesis test,
built by schemathesis' per-operation test builder (`get_all_tests`): its pytest loader
`schemathesis.pytest.from_fixture` does not run under pytest 9 (it reads `Node._nodeid`). A fixed
seed and a fixed number of generated cases per operation keep a run bounded and reproducible; a
failure names the role, the operation and a curl command that reproduces it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import Case, CheckContext
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.core.transport import Response
from schemathesis.pytest.lazy import get_all_tests

from tests.support import token_for

pytestmark = pytest.mark.usefixtures("worker")  # so a transfer asked to `Prefer: wait` settles

ROLES = ["user", "service", "admin"]
SEED = 20260610
MAX_EXAMPLES = 30
PROBLEM_MEMBERS = ("code", "status", "title")
HYPOTHESIS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # the first requests of an operation warm caches and pools
    derandomize=True,
    database=None,  # no example database: every run sends the same cases
    print_blob=False,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def is_problem_json(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is problem+json (RFC 9457) with the members clients rely on."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} answered as {content_type!r}"
    )
    body = response.json()
    missing = [member for member in PROBLEM_MEMBERS if member not in body]
    assert not missing, f"problem+json without {missing}: {body}"
    assert body["status"] == response.status_code, f"status member {body['status']!r}"
    return True


def call_and_validate(case: Case) -> None:
    case.call_and_validate(additional_checks=[is_problem_json])


def operation_tests(app: Any, role: str) -> Iterator[tuple[str, Callable[[], None]]]:
    """(label, Hypothesis test) for every operation of the app's document, each request carrying
    a valid token of `role` for one fresh principal."""
    token = token_for(uuid.uuid4(), role)
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
            # Schema-valid is not enough to succeed here: balances, opaque cursors, chain
            # addresses and signatures refuse well-formed requests with a 4xx by design.
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
    )
    document = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=config)
    # The notification stream never ends (server-sent events until the client leaves), so a
    # request to it would hold the test; tests/e2e/test_notification_stream.py covers it over HTTP.
    schema = document.exclude(method="GET", path="/api/notifications/stream")
    for result in get_all_tests(
        schema=schema, test_func=call_and_validate, settings=HYPOTHESIS, given_kwargs=None
    ):
        if isinstance(result, Err):
            raise result.err()  # the document itself is invalid
        operation, test = result.ok()
        yield operation.label, test


@pytest.mark.parametrize("role", ROLES)
def test_no_generated_request_gets_a_5xx_an_undocumented_answer_or_a_non_problem_4xx(
    app: Any, role: str, subtests: pytest.Subtests
) -> None:
    tested = []
    for label, test in operation_tests(app, role):
        tested.append(label)
        with subtests.test(msg=f"{role} {label}"):
            try:
                test()
            except FailureGroup as failures:
                raise AssertionError(_report(failures)) from None
    assert len(tested) >= 20, tested
    assert "GET /api/notifications/stream" not in tested


def _report(failures: FailureGroup) -> str:
    """Schemathesis' report: each distinct failure, the response and a curl command."""
    return "\n".join([failures.message, *map(str, failures.exceptions)])


def test_the_document_describes_errors_as_the_problem_json_they_are(client: Any) -> None:
    spec = client.get("/api/openapi.json").get_json()
    for name in ("DEFAULT_ERROR", "UNPROCESSABLE_ENTITY"):
        content = spec["components"]["responses"][name]["content"]
        assert list(content) == ["application/problem+json"], name
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "instance"} <= set(problem["required"])
    assert problem["properties"]["status"]["type"] == "integer"
    assert problem["properties"]["code"]["type"] == "string"
    overview = spec["paths"]["/api/wallet"]["get"]["responses"]["200"]["content"]
    assert list(overview) == ["application/json"]  # answers that are not errors stay JSON


def test_the_document_says_an_amount_may_be_sent_as_a_json_number(client: Any) -> None:
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    amount = schemas["TransferRequest"]["properties"]["amount"]
    assert {"type": "number"} in amount["anyOf"]
    assert any(choice.get("type") == "string" for choice in amount["anyOf"])
