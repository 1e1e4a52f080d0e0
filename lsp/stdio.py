"""The stdio transport, with stdin read on the event loop.

pygls reads stdin in a worker thread, one thread hop for each header line and body of
every message; reading the pipe with asyncio instead takes that off the path of every
keystroke. When stdin is not a pipe (a file, a terminal), pygls's reader is used.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async
from pygls.server import JsonRPCServer

log = logging.getLogger(__name__)


class PipeReader:
    """An asyncio stream with the reader interface pygls's message loop expects (an
    incomplete read at the end of input reads as the end)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream

    async def readline(self) -> bytes:
        return await self._stream.readline()

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self._stream.readexactly(n)
        except asyncio.IncompleteReadError:
            return b""


def serve_stdio(server: JsonRPCServer) -> None:
    """Run ``server`` on this process's stdin and stdout until the input ends or the
    client sends ``exit``."""
    stop = threading.Event()
    server._stop_event = stop
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader()
        reader: Any
        try:
            await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(stream), sys.stdin.buffer
            )
            reader = PipeReader(stream)
        except (OSError, ValueError):
            reader = StdinAsyncReader(sys.stdin.buffer, server.thread_pool)
        await run_async(
            stop_event=stop,
            reader=reader,
            protocol=server.protocol,
            logger=log,
            error_handler=server.report_server_error,
        )

    try:
        asyncio.run(serve())
    except (BrokenPipeError, KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
