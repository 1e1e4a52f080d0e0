"""pygls's LSP protocol, hardened for prefloop.

* A request whose parameters cannot be parsed gets an ``InvalidParams`` error answer
  (pygls would log it and leave the client waiting forever).
* A request after ``shutdown`` gets an ``InvalidRequest`` answer, as the specification
  asks (pygls would drop it silently).
* Text synchronization is left to the server's own :class:`~prefloop.lsp.documents.Document`
  store: pygls's workspace copy would rescan every line of a multi-megabyte document on
  each keystroke.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import RPCMessage, RPCRequest
from pygls.protocol.language_server import lsp_method

log = logging.getLogger(__name__)


def _request_id(data: Any) -> str | int | None:
    if not isinstance(data, dict) or not isinstance(data.get("method"), str):
        return None
    msg_id = data.get("id")
    if isinstance(msg_id, bool) or not isinstance(msg_id, str | int):
        return None
    return msg_id


class PrefloopProtocol(LanguageServerProtocol):
    """See the module docstring."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            msg_id = _request_id(data)
            if msg_id is not None:
                self._send_response(msg_id, error=exc.to_response_error())
            raise

    def handle_message(self, message: RPCMessage) -> None:
        if (
            self._shutdown
            and isinstance(message, RPCRequest)
            and getattr(message, "method", "") != types.EXIT
        ):
            error = JsonRpcInvalidRequest(message="the server has been shut down")
            self._send_response(message.id, error=error.to_response_error())
            return
        super().handle_message(message)

    def _user_handler(self, method: str, params: Any) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(method)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(
        self, params: types.DidOpenTextDocumentParams
    ) -> Generator[Any, Any, None]:
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(
        self, params: types.DidCloseTextDocumentParams
    ) -> Generator[Any, Any, None]:
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CLOSE, params)
