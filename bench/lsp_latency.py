"""Latency the language server adds over calling the service directly.

One `prefloop serve` (a tiny random model by default, so generation is short and steady)
and one `prefloop lsp` talking to it. For every sample the document changes (a
``didChange``, as an editor sends before asking), then the same suggestion request goes
once through the language server (``textDocument/inlineCompletion``, debounce off) and
once straight to ``POST /v1/suggestions`` with the body the language server sends; the
order alternates so drift affects both sides equally. Event bookkeeping runs in the
language server's background as in real use.

    python -m bench.lsp_latency [--requests 200] [--max-tokens 2] [--model tiny|embedded]

Reports both distributions, the difference of their percentiles (the headline figure:
the p95 of the LSP round trip minus the p95 of the direct call), and the per-pair
differences.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench.common import RESULTS, cpu_note, shared_home, start_server, summary
from prefloop.models import prepare_embedded
from prefloop.settings import Settings
from tests.conftest import build_tiny_model

URI = "file:///bench/project/calc.py"
WARMUP = 10


def line_for(i: int) -> str:
    return f"total_{i} = count"


async def measure(server_url: str, home: Path, requests: int, max_tokens: int) -> dict[str, Any]:
    client = LanguageClient("bench", "0")
    env = {**os.environ, "PREFLOOP_HOME": str(home), "PREFLOOP_LOG_LEVEL": "warning"}
    await client.start_io(sys.executable, "-m", "prefloop", "lsp", env=env)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri="file:///bench/project",
            initialization_options={
                "serverUrl": server_url,
                "debounce": 0,
                "maxTokens": max_tokens,
                "mode": "single_line",
            },
        )
    )
    client.initialized(types.InitializedParams())
    text = "import math\n\n" + line_for(0)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=URI, language_id="python", version=1, text=text)
        )
    )
    direct_ms: list[float] = []
    lsp_ms: list[float] = []
    empty = 0
    async with httpx.AsyncClient(base_url=server_url, timeout=60, trust_env=False) as http:
        for i in range(1, WARMUP + requests + 1):
            previous, line = line_for(i - 1), line_for(i)
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=i + 1),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(
                                start=types.Position(line=2, character=0),
                                end=types.Position(line=2, character=len(previous)),
                            ),
                            text=line,
                        )
                    ],
                )
            )
            params = types.InlineCompletionParams(
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=types.Position(line=2, character=len(line)),
            )
            body = {
                "prefix": "import math\n\n" + line,
                "suffix": "",
                "language": "python",
                "path": "calc.py",
                "cursor": {"line": 2, "character": len(line)},
                "mode": "single_line",
                "max_tokens": max_tokens,
                "n": 1,
                "session_id": "bench-direct",
            }

            async def through_lsp(params: types.InlineCompletionParams = params) -> float:
                nonlocal empty
                t0 = time.perf_counter()
                result = await client.text_document_inline_completion_async(params)
                elapsed = (time.perf_counter() - t0) * 1000
                items = result.items if isinstance(result, types.InlineCompletionList) else result
                empty += not items
                return elapsed

            async def direct(body: dict[str, Any] = body) -> float:
                t0 = time.perf_counter()
                response = await http.post("/v1/suggestions", json=body)
                elapsed = (time.perf_counter() - t0) * 1000
                response.raise_for_status()
                return elapsed

            if i % 2:
                lsp, dir_ = await through_lsp(), await direct()
            else:
                dir_, lsp = await direct(), await through_lsp()
            if i > WARMUP:
                lsp_ms.append(lsp)
                direct_ms.append(dir_)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    lsp_summary, direct_summary = summary(lsp_ms), summary(direct_ms)
    paired = [a - b for a, b in zip(lsp_ms, direct_ms, strict=True)]
    return {
        "requests": len(lsp_ms),
        "max_tokens": max_tokens,
        "direct_ms": direct_summary,
        "lsp_ms": lsp_summary,
        "added_ms_p50": lsp_summary["p50"] - direct_summary["p50"],
        "added_ms_p95": lsp_summary["p95"] - direct_summary["p95"],
        "paired_added_ms": summary(paired),
        "lsp_answers_without_items": empty,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=2)
    parser.add_argument("--model", choices=["tiny", "embedded"], default="tiny")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="prefloop-bench-lsp-"))
    embedded = prepare_embedded(Settings(home=shared_home()))
    model: str | Path = "embedded"
    if args.model == "tiny":
        model = build_tiny_model(work / "tiny-model", embedded)
    else:
        (work / "service" / "models").mkdir(parents=True)
        (work / "service" / "models" / embedded.name).symlink_to(embedded)
    server = start_server(work / "service", model)
    try:
        result = asyncio.run(measure(server.url, work / "lsp", args.requests, args.max_tokens))
    finally:
        server.stop()
    result = {
        "model": f"{args.model} model, transformers engine, CPU ({cpu_note()})",
        **result,
        "target": "added_ms_p95 <= 10",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lsp_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
