"""Server-Sent Events clients for the stream tests."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.request
from typing import Any


class Stream:
    """An SSE client reading in a thread: events (id, event, data) and comment lines."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        request = urllib.request.Request(url, headers={"Accept": "text/event-stream", **headers})
        self.response = urllib.request.urlopen(request, timeout=30)
        self.events: queue.Queue[dict[str, str]] = queue.Queue()
        self.comments: list[str] = []
        # Set by the first line: the server sends it once the stream is registered for live
        # wake-ups, so anything that happens after this is pushed.
        self.opened = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event: dict[str, str] = {}
        try:
            for raw in self.response:
                self.opened.set()
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    self.comments.append(line)
                elif not line:
                    if "data" in event:
                        self.events.put(event)
                    event = {}
                else:
                    key, _, value = line.partition(": ")
                    event[key] = value
        except (OSError, ValueError, AttributeError):  # closed under the reader
            pass

    def next(self, kind: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            data = json.loads(event["data"])
            if data["kind"] == kind:
                return {"id": event["id"], **data}

    def close(self) -> None:
        self.response.close()


class EventSource:
    """What a browser's EventSource does: remembers the last event id (an `id:` line sets it
    even without data), and after the server ends the stream reconnects with Last-Event-ID —
    here only when the test says so, to make things happen while it is disconnected."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers
        self.last_event_id: str | None = None
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.ended = threading.Event()
        self._reconnect = threading.Event()
        self._closed = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._closed:
            headers = dict(self.headers)
            if self.last_event_id is not None:
                headers["Last-Event-ID"] = self.last_event_id
            request = urllib.request.Request(self.url, headers=headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                self.connected.set()
                fields: dict[str, str] = {}
                for raw in response:
                    line = raw.decode().rstrip("\n")
                    if line.startswith(":"):
                        continue
                    if line:
                        key, _, value = line.partition(": ")
                        fields[key] = value
                        continue
                    if "id" in fields:
                        self.last_event_id = fields["id"]
                    if "data" in fields:
                        self.events.put({"id": int(fields["id"]), **json.loads(fields["data"])})
                    fields = {}
            self.connected.clear()
            self.ended.set()
            self._reconnect.wait()
            self._reconnect.clear()

    def resume(self) -> None:
        self.ended.clear()
        self._reconnect.set()
        assert self.connected.wait(10)

    def take(self, count: int) -> list[int]:
        return [self.events.get(timeout=10)["id"] for _ in range(count)]

    def close(self) -> None:
        self._closed = True
        self._reconnect.set()
