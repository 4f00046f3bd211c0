"""Holds many notification streams open, in its own process so the load generator's CPU is not
the one serving them: `python -m bench.streams_client PORT USERS_FILE PER_USER`.

Opens PER_USER streams for every user of the users file (GET /api/notifications/stream with the
user's bearer token), all at once, each bounded by CONNECT_TIMEOUT; a stream counts as open
when it answered `200` with `Content-Type: text/event-stream`. Prints one JSON line (opened,
failed by reason), keeps the open ones read until stdin closes (or MAX_SECONDS pass), then prints
a second line (still open, ended by the server) and exits. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

HOST = "127.0.0.1"
CONNECT_TIMEOUT = 15.0
MAX_SECONDS = 600.0


class Stream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.ended = False

    async def drain(self) -> None:
        try:
            while await self.reader.read(65536):
                pass
        except (OSError, asyncio.IncompleteReadError):
            pass
        self.ended = True


async def _open(port: int, token: str) -> Stream | str:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5.0)
    except (OSError, TimeoutError) as exc:
        return f"connect {type(exc).__name__}"
    writer.write(
        f"GET /api/notifications/stream HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        writer.close()
        return f"no answer ({type(exc).__name__})"
    status = head.split(" ", 2)[1] if head.count(" ") >= 1 else "?"
    if status != "200" or "content-type: text/event-stream" not in head:
        writer.close()
        return f"status {status}"
    return Stream(reader, writer)


async def _bounded_open(port: int, token: str) -> Stream | str:
    try:
        return await asyncio.wait_for(_open(port, token), CONNECT_TIMEOUT)
    except TimeoutError:
        return f"no answer within {CONNECT_TIMEOUT:.0f} s"


async def main(port: int, users_file: Path, per_user: int) -> None:
    tokens = [line.split()[1] for line in users_file.read_text().splitlines() if line.strip()]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def wait_for_stdin_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
    started = time.monotonic()
    results = await asyncio.gather(
        *(_bounded_open(port, t) for t in tokens for _ in range(per_user))
    )
    streams = [r for r in results if isinstance(r, Stream)]
    failed = Counter(r for r in results if isinstance(r, str))
    print(
        json.dumps(
            {
                "asked": len(results),
                "opened": len(streams),
                "failed": dict(failed),
                "seconds": round(time.monotonic() - started, 2),
            }
        ),
        flush=True,
    )
    readers = [asyncio.create_task(s.drain()) for s in streams]
    try:
        await asyncio.wait_for(stop.wait(), MAX_SECONDS)
    except TimeoutError:
        pass
    ended = sum(s.ended for s in streams)
    print(json.dumps({"still_open": len(streams) - ended, "ended_by_server": ended}), flush=True)
    for s in streams:
        s.writer.close()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
