"""Suggestion latency through the HTTP API vs the bare engine call, same prompts, one run.

The bare side loads the same model with the same engine class in this process and calls
``generate`` with the exact prompt the service builds; the API side posts the same
request to a real `prefloop serve` process and measures the client-side round trip.
The two are interleaved prompt by prompt so drift affects both equally.

    python -m bench.latency [--rounds 3] [--max-tokens 24]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, shared_home, start_server, summary
from prefloop.models import prepare_embedded
from prefloop.prompting import build_prompt, resolve_template, special_tokens
from prefloop.server.engines import GenerationParams
from prefloop.server.engines.hf import TransformersEngine
from prefloop.server.postprocess import postprocess_candidates
from prefloop.settings import Settings

CONTEXTS: list[tuple[str, str, str, str]] = [
    ("python", "fib.py", "def fibonacci(n):", ""),
    ("python", "util.py", "import os\n\ndef read_lines(path):\n    with open(path) as fh:\n", ""),
    ("python", "calc.py", "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"),
    ("python", "models.py", "class User:\n    def __init__(self, name, email):\n", ""),
    ("python", "sort.py", "def bubble_sort(items):\n    n = len(items)\n", ""),
    ("javascript", "app.js", "function greet(name) {\n", "\n}\n"),
    ("javascript", "sum.js", "const total = items.reduce(", ");\n"),
    ("go", "main.go", 'package main\n\nimport "fmt"\n\nfunc main() {\n', "\n}\n"),
    ("python", "io.py", "import json\n\ndef load_config(path):\n    ", ""),
    (
        "python",
        "stack.py",
        "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
        "    def push(self, item):\n",
        "",
    ),
]


async def bare_engine(model: str) -> TransformersEngine:
    engine = TransformersEngine(model)
    await engine.start()
    return engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=24)
    args = parser.parse_args()

    settings = Settings(home=shared_home())
    model = str(prepare_embedded(settings))
    home = Path(tempfile.mkdtemp(prefix="prefloop-bench-latency-"))
    (home / "models").mkdir()
    (home / "models" / Path(model).name).symlink_to(model)
    server = start_server(home, "embedded")
    loop = asyncio.new_event_loop()
    engine = loop.run_until_complete(bare_engine(model))
    template = resolve_template(settings.fim_template, special_tokens(engine.tokenizer))
    api_ms: list[float] = []
    engine_ms: list[float] = []
    server_ms: list[float] = []
    mismatches = 0
    try:
        with server.client(timeout=300) as client:
            for round_no in range(args.rounds + 1):
                for language, path, prefix, suffix in CONTEXTS:
                    prompt = build_prompt(
                        prefix,
                        suffix,
                        template=template,
                        tokenizer=engine.tokenizer,
                        max_prompt_tokens=min(
                            settings.max_prompt_tokens,
                            engine.max_context_tokens - args.max_tokens,
                        ),
                        language=language,
                        path=path,
                    )
                    params = GenerationParams(max_tokens=args.max_tokens, stop=prompt.stop)
                    t0 = time.perf_counter()
                    gens = loop.run_until_complete(engine.generate(prompt.text, params))
                    bare = (time.perf_counter() - t0) * 1000
                    bare_text = postprocess_candidates(
                        [g.text for g in gens],
                        prefix=prompt.prefix,
                        suffix=prompt.suffix,
                        mode="multi_line",
                        lead=prompt.lead,
                    )
                    t0 = time.perf_counter()
                    response = client.post(
                        "/v1/suggestions",
                        json={
                            "prefix": prefix,
                            "suffix": suffix,
                            "language": language,
                            "path": path,
                            "max_tokens": args.max_tokens,
                        },
                    )
                    api = (time.perf_counter() - t0) * 1000
                    response.raise_for_status()
                    body = response.json()
                    if [c["text"] for c in body["candidates"]] != bare_text:
                        mismatches += 1
                    if round_no == 0:
                        continue  # warm-up
                    engine_ms.append(bare)
                    api_ms.append(api)
                    server_ms.append(body["timings"]["total_ms"])
    finally:
        server.stop()
        loop.run_until_complete(engine.close())
    paired = sorted((a - e) / e for a, e in zip(api_ms, engine_ms, strict=True))
    # What the HTTP layer adds on top of the service's own handling of the same request.
    http_ms = [a - s for a, s in zip(api_ms, server_ms, strict=True)]
    result = {
        "model": "SmolLM2-135M-Instruct (embedded), transformers engine, CPU",
        "max_tokens": args.max_tokens,
        "requests": len(api_ms),
        "engine_ms": summary(engine_ms),
        "api_ms": summary(api_ms),
        "server_total_ms": summary(server_ms),
        "overhead_p50_pct": 100 * (summary(api_ms)["p50"] / summary(engine_ms)["p50"] - 1),
        "overhead_p95_pct": 100 * (summary(api_ms)["p95"] / summary(engine_ms)["p95"] - 1),
        "paired_overhead_median_pct": 100 * paired[len(paired) // 2],
        "http_layer_ms": summary(http_ms),
        "outputs_differing": mismatches,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
