"""A small synchronous Solana JSON-RPC client (solana-py 0.41 has no sync client).

Transport failures, timeouts, HTTP 429/5xx and node-side transient errors are retried with
exponential backoff and then surface as `ChainUnavailableError` — never as a verdict on a
transaction. A definitive refusal (simulation failed, invalid transaction) is `ChainRejectedError`.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import httpx2

log = logging.getLogger(__name__)

# JSON-RPC error codes that are a definitive answer (about the transaction or the request), not
# a sign of the node's health: simulation failed, signature verification, invalid params, no such
# method.
_REJECTIONS = {-32002, -32003, -32602, -32601}


class ChainError(Exception):
    pass


class ChainUnavailableError(ChainError):
    """The RPC could not answer (after retries). Try again later; decide nothing."""


class ChainRejectedError(ChainError):
    """The cluster refused the transaction (e.g. preflight simulation failed)."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data

    @property
    def already_processed(self) -> bool:
        text = f"{self} {self.data}"
        return "AlreadyProcessed" in text or "already been processed" in text


class JsonRpc:
    def __init__(
        self, url: str, *, timeout: float = 5.0, retries: int = 3, backoff: float = 0.2
    ) -> None:
        self.url = url
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._ids = itertools.count(1)
        self._http = httpx2.Client(timeout=timeout)

    def call(self, method: str, *params: Any) -> Any:
        payload = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": list(params),
        }
        delay = self._backoff
        for attempt in range(self._retries + 1):
            try:
                response = self._http.post(self.url, json=payload)
                if response.status_code == 429 or response.status_code >= 500:
                    raise ChainUnavailableError(f"HTTP {response.status_code} from {method}")
                body = response.json()
            except (httpx2.HTTPError, ValueError, ChainUnavailableError) as exc:
                if attempt == self._retries:
                    raise ChainUnavailableError(f"{method}: {exc}") from exc
                log.info("rpc %s failed (%s), retry %s in %.2fs", method, exc, attempt + 1, delay)
                time.sleep(delay)
                delay *= 2
                continue
            error = body.get("error")
            if error is None:
                return body.get("result")
            if error.get("code") in _REJECTIONS:
                raise ChainRejectedError(str(error.get("message")), error.get("data"))
            if attempt == self._retries:
                raise ChainUnavailableError(f"{method}: {error}")
            time.sleep(delay)
            delay *= 2
        raise ChainUnavailableError(method)  # pragma: no cover

    def close(self) -> None:
        self._http.close()
