"""Running the language server: stdio by default, TCP for debugging."""

from __future__ import annotations

from prefloop.settings import Settings

from .features import create_server
from .logs import setup_lsp_logging

DEFAULT_TCP_PORT = 2087


def run(
    settings: Settings, *, tcp: bool = False, host: str = "127.0.0.1", port: int = DEFAULT_TCP_PORT
) -> int:
    """Serve one editor until it exits; events still queued are spooled on the way out."""
    setup_lsp_logging(settings.log_level)
    server = create_server(settings)
    try:
        if tcp:
            server.start_tcp(host, port)
        else:
            server.start_io()
    finally:
        server.persist_leftovers()
    return 0
