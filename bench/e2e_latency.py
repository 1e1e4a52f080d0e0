"""The latency a user sees in VS Code: from the last keystroke to ghost text on screen.

The same set-up as the end-to-end tests (tests/e2e): `prefloop serve` on the embedded
model, code-server with the freshly built extension (single-line mode, 12 tokens per
suggestion), headless chromium. For each sample a new function is typed in one go; the
time runs from its last keystroke to the ghost text being on screen, measured in the
page's clock, and the suggestion is accepted with Tab. Next to it: the service's own
time for the same request (``total_ms`` of the stored suggestion that is on screen).

    python -m bench.e2e_latency [--samples 16]

Needs `make editor vsix` first.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.common import RESULTS, cpu_note, shared_home, summary
from prefloop.models import prepare_embedded
from prefloop.settings import Settings
from tests.e2e.conftest import open_workbench, start_editor, start_service, write_project
from tests.e2e.workbench import E2EError, missing_requirements, start_line, suggest

LINES = [
    ("def area_{i}(width, height):", "    return "),
    ("def is_even_{i}(n):", "    return n "),
    ("def names_{i}(people):", "    return [p."),
    ("def total_{i}(prices):", "    return sum("),
]


def measure(samples: int, root: Path) -> dict[str, Any]:
    service = start_service(root, prepare_embedded(Settings(home=shared_home())))
    editor = None
    bench = None
    try:
        editor = start_editor(root, service)
        project = write_project(root / "project")
        (project / "bench.py").write_text('"""Typed by the benchmark."""\n')
        bench = open_workbench(editor, project, service, RESULTS / "e2e")
        start_line(bench, "bench.py")
        rows: list[dict[str, Any]] = []
        missed: list[str] = []
        for i in range(samples):
            header, line = LINES[i % len(LINES)]
            text = "\n\n" + header.format(i=i) + "\n" + line
            bench.call("press", key="Escape")
            bench.wait_no_ghost()
            try:
                shown = suggest(
                    bench,
                    service.store,
                    text,
                    lambda ms, sid, service_ms: rows.append(
                        {"ms": ms, "suggestion_id": sid, "service_ms": service_ms}
                    ),
                    timeout=30,
                )
            except E2EError as exc:
                # No ghost text for this one (say, the model's line was empty): counted.
                bench.screenshot(f"missed-{i}")
                missed.append(f"{text!r}: {exc}")
                continue
            rows[-1]["text"] = shown.candidate
            # Accept it, so the file reads like finished code for the next sample's prompt.
            bench.call("press", key="Tab")
            service.store.wait_event(shown.suggestion_id, "accepted")
            print(f"{i + 1}/{samples}: {rows[-1]['ms']:.0f} ms", flush=True)
        return {
            "samples": rows,
            "missed": missed,
            "editor_ms": summary([r["ms"] for r in rows]),
            "service_ms": summary([r["service_ms"] for r in rows if r["service_ms"] is not None]),
            "added_ms": summary(
                [r["ms"] - r["service_ms"] for r in rows if r["service_ms"] is not None]
            ),
        }
    finally:
        if bench is not None:
            bench.stop()
        if editor is not None:
            editor.stop()
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    problem = missing_requirements()
    if problem is not None:
        raise SystemExit(f"the editor is not installed: {problem}")
    with tempfile.TemporaryDirectory(prefix="prefloop-e2e-bench-") as tmp:
        result = measure(args.samples, Path(tmp))
    result["machine"] = cpu_note()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "e2e_latency.json").write_text(json.dumps(result, indent=2))
    print(f"{len(result['samples'])} suggestions ({len(result['missed'])} missed), {cpu_note()}")
    print(f"{'':34} {'p50':>8} {'p95':>8}")
    for label, key in (
        ("last keystroke -> ghost text", "editor_ms"),
        ("service total_ms (same requests)", "service_ms"),
        ("editor + extension + LSP added", "added_ms"),
    ):
        s = result[key]
        print(f"{label:34} {s['p50']:7.0f}ms {s['p95']:7.0f}ms")


if __name__ == "__main__":
    main()
