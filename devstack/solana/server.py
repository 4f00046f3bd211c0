"""HTTP transport for the JSON-RPC node, plus the background block producer.

Plain ``http.server``: one thread per connection, keep-alive (HTTP/1.1) and Nagle disabled —
without the latter every small response waits ~40 ms for a delayed ACK.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .chain import Chain
from .errors import INVALID_REQUEST, PARSE_ERROR, RpcError
from .rpc import ADMIN_PREFIX, Node

log = logging.getLogger(__name__)
_INTERNAL_ERROR = -32603


class RpcHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive clients must not hold up stop()
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], node: Node) -> None:
        self.node = node
        super().__init__(address, RpcRequestHandler)


def _response(
    request_id: Any, *, result: Any = None, error: RpcError | None = None
) -> dict[str, Any]:
    if error is not None:
        return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def answer(node: Node, call: Any) -> dict[str, Any]:
    """One JSON-RPC call to one response object; never raises."""
    if not isinstance(call, dict) or not isinstance(call.get("method"), str):
        return _response(None, error=RpcError(INVALID_REQUEST, "Invalid request"))
    request_id = call.get("id")
    try:
        return _response(request_id, result=node.call(call["method"], call.get("params")))
    except RpcError as exc:
        return _response(request_id, error=exc)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # includes pyo3 PanicException, which is not an Exception
        log.exception("internal error in %s", call.get("method"))
        return _response(request_id, error=RpcError(_INTERNAL_ERROR, "Internal error"))


class RpcRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: RpcHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _faulted(self, methods: list[str]) -> bool:
        """Answer for a stopped node or an injected fault that applies; True when answered."""
        node = self.server.node
        if node.stopped:  # a keep-alive connection outliving stop(): hang up
            self.close_connection = True
            self._send(503, b"Service Unavailable", "text/plain")
            return True
        mode = node.faults.mode
        if mode not in ("down", "timeout") or all(m.startswith(ADMIN_PREFIX) for m in methods):
            return False
        if mode == "timeout":
            node.fault_cleared.wait(node.faults.delay_seconds)
            self._send(504, b"Gateway Timeout", "text/plain")
        else:
            self._send(503, b"Service Unavailable", "text/plain")
        return True

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/health":
            self._send(405, b"Method Not Allowed", "text/plain")
        elif not self._faulted(["getHealth"]):
            self._send(200, b"ok", "text/plain")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            request = json.loads(body)
        except ValueError:
            error = RpcError(PARSE_ERROR, "Parse error")
            self._send(200, json.dumps(_response(None, error=error)).encode())
            return
        batch = isinstance(request, list)
        calls = request if batch else [request]
        if not calls:
            error = RpcError(INVALID_REQUEST, "Invalid request")
            self._send(200, json.dumps(_response(None, error=error)).encode())
            return
        methods = [str(c.get("method")) if isinstance(c, dict) else "" for c in calls]
        if self._faulted(methods):
            return
        responses = [answer(self.server.node, call) for call in calls]
        self._send(200, json.dumps(responses if batch else responses[0]).encode())


class BlockTicker:
    """Produces one block every ``slot_ms`` (0 = paused) on a daemon thread."""

    def __init__(self, chain: Chain, slot_ms: int) -> None:
        self.chain = chain
        self.slot_ms = slot_ms
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="solana-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def set_slot_ms(self, slot_ms: int) -> None:
        self.slot_ms = slot_ms
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        due = time.monotonic() + self.slot_ms / 1000
        while not self._stopped:
            if self.slot_ms <= 0:
                self._wake.wait()
            else:
                self._wake.wait(max(0.0, due - time.monotonic()))
            if self._wake.is_set():  # speed changed or stopping: restart the period
                self._wake.clear()
                due = time.monotonic() + self.slot_ms / 1000
                continue
            with self.chain.lock:
                self.chain.advance(1)
            # Never burst to catch up after a stall; a slow machine just has slower blocks.
            due = max(due + self.slot_ms / 1000, time.monotonic())
