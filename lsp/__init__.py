"""prefloop.lsp: the language server (``prefloop lsp``).

It serves inline completions from ``prefloop serve`` to any LSP editor and turns what the
editor reports (edits, requests, the accept and dismiss commands, saves and closes) into
feedback events, which it delivers to the service through a durable spool. Pure parts
(documents, ranges, similarity, signals, retention, rewrites) are separate from the
parts that do I/O (service, spool, delivery, server).
"""
