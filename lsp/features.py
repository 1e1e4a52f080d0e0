"""Registering prefloop's LSP features and commands on a language server.

Each handler is one line over :class:`~prefloop.lsp.server.PrefloopLanguageServer`.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from prefloop.settings import Settings

from .commands import ACCEPT, DISMISS, RETRAIN, STATUS, TOGGLE
from .server import PrefloopLanguageServer


def create_server(settings: Settings) -> PrefloopLanguageServer:
    """A language server with every prefloop feature registered."""
    server = PrefloopLanguageServer(settings)

    @server.feature(types.INITIALIZE)
    def initialize(ls: PrefloopLanguageServer, params: types.InitializeParams) -> None:
        ls.setup(params)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: PrefloopLanguageServer, params: None) -> None:
        await ls.finish()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PrefloopLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.open_document(params.text_document)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PrefloopLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.change_document(params)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PrefloopLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.save_document(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PrefloopLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.close_document(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: PrefloopLanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        return await ls.complete(params)

    @server.command(ACCEPT)
    def accept(ls: PrefloopLanguageServer, *arguments: Any) -> dict[str, Any]:
        return ls.accept(arguments)

    @server.command(DISMISS)
    def dismiss(ls: PrefloopLanguageServer, *arguments: Any) -> dict[str, Any]:
        return ls.dismiss(arguments)

    @server.command(TOGGLE)
    def toggle(ls: PrefloopLanguageServer, *arguments: Any) -> dict[str, Any]:
        return ls.toggle(arguments)

    @server.command(RETRAIN)
    async def retrain(ls: PrefloopLanguageServer, *arguments: Any) -> dict[str, Any]:
        return await ls.retrain()

    @server.command(STATUS)
    async def status(ls: PrefloopLanguageServer, *arguments: Any) -> dict[str, Any]:
        return await ls.status()

    return server
