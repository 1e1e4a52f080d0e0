"""``prefloop demo``: the whole learning loop in a few minutes, with a simulated developer.

A throw-away home next to the user's data (never the user's own database) gets its own
``prefloop serve`` on the embedded model. The demo measures how often the served model
writes type-annotated signatures on held-out functions, lets a simulated developer who
wants annotations work through other functions (accepting annotated suggestions, typing
annotated signatures over bare ones), builds preference pairs from that feedback, runs a
DPO update, and, once the gate passed and the new version is hot-swapped into the running
service, measures again.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from prefloop.commands import CommandError, settings_from_args
from prefloop.protocol import TrainingRun
from prefloop.settings import Settings
from prefloop.trainer.simulate import (
    HELDOUT_TASKS,
    TRAINING_TASKS,
    SimulatedDeveloper,
    annotated_share,
)

Report = Callable[[str], None]


class DemoError(RuntimeError):
    """The demo could not run to its end (the service or the run failed)."""


@dataclass
class DemoResult:
    before: float
    after: float
    version_before: str
    version_after: str
    run: TrainingRun
    pairs: dict[str, Any]
    before_completions: list[str] = field(default_factory=list)
    after_completions: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    failed_requests: list[str] = field(default_factory=list)
    versions_served: dict[str, int] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BackgroundEditor(threading.Thread):
    """Asks for suggestions every ``pause`` seconds while the loop runs, as an editor would, and
    counts the answers per model version and the requests that failed."""

    def __init__(self, url: str, *, pause: float = 0.5) -> None:
        super().__init__(name="demo-editor", daemon=True)
        self.url = url
        self.pause = pause
        self.stopping = threading.Event()
        self.versions: dict[str, int] = {}
        self.failures: list[str] = []

    def run(self) -> None:
        task = HELDOUT_TASKS[0]
        with httpx.Client(base_url=self.url, timeout=120) as client:
            developer = SimulatedDeveloper(client, user="demo-editor")
            while not self.stopping.is_set():
                try:
                    body = developer.suggest(task, max_tokens=4)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                version = str(body["model_version"])
                self.versions[version] = self.versions.get(version, 0) + 1
                self.stopping.wait(self.pause)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=300)


class DemoService:
    """A ``prefloop serve`` subprocess on the demo's own home."""

    def __init__(self, home: Path, model: Path, *, env: dict[str, str]) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **env,
            "PREFLOOP_HOME": str(home),
            "PREFLOOP_MODEL": str(model),
            "PREFLOOP_ENGINE": "transformers",
            "PREFLOOP_PORT": str(self.port),
            "PREFLOOP_HOST": "127.0.0.1",
            "PREFLOOP_SERVER_URL": self.url,
            "HF_HUB_OFFLINE": "1",
        }
        self.log_path = home / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "prefloop", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoError(f"prefloop serve exited early; see {self.log_path}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise DemoError(f"prefloop serve did not become ready; see {self.log_path}")

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.url + "/healthz", timeout=10).json()
        return body

    def wait_for_version(self, version: str, timeout: float = 120.0) -> float:
        """Seconds until ``/healthz`` reports ``version`` as the served model."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.health().get("model_version") == version:
                return time.monotonic() - start
            time.sleep(0.1)
        raise DemoError(f"the service did not start serving {version} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_demo(
    settings: Settings,
    *,
    home: Path | None = None,
    rounds: int = 1,
    keep: bool = False,
    report: Report = print,
) -> DemoResult:
    """Run the loop once on a throw-away home; ``settings`` locates the prepared model."""
    from prefloop.models import prepare_embedded
    from prefloop.training import run_exit_code, start_run, wait_run

    timings: dict[str, float] = {}
    t0 = time.monotonic()
    if home is not None and (home / "prefloop.db").exists():
        raise DemoError(f"{home} already holds a prefloop database; give the demo a new directory")
    model_dir = prepare_embedded(settings, report=report)
    own_home = home is None
    demo_home = home or Path(tempfile.mkdtemp(prefix="prefloop-demo-"))
    service_env = {
        # The demo is about learning from feedback: no judge, no scheduled runs.
        "PREFLOOP_JUDGE_BACKEND": "off",
        "PREFLOOP_JUDGE_CHECKS": "false",
        "PREFLOOP_TRAIN_SCHEDULE": "off",
        "PREFLOOP_SWAP_POLL_SECONDS": "1",
    }
    service = DemoService(demo_home, model_dir, env=service_env)
    editor: BackgroundEditor | None = None
    report(f"starting prefloop serve on the embedded model in {demo_home}")
    service.start()
    timings["start"] = time.monotonic() - t0
    try:
        demo_settings = Settings(
            home=demo_home,
            model=str(model_dir),
            engine="transformers",
            server_url=service.url,
            train_min_new_pairs=1,
        )
        with httpx.Client(base_url=service.url, timeout=120) as client:
            version_before = service.health()["model_version"]
            report(f"measuring: {len(HELDOUT_TASKS)} held-out signatures on {version_before}")
            t = time.monotonic()
            before, before_completions = annotated_share(client, HELDOUT_TASKS)
            timings["measure_before"] = time.monotonic() - t
            report(f"  annotated signatures before: {before:.0%}")

            developer = SimulatedDeveloper(client)
            t = time.monotonic()
            for round_no in range(1, rounds + 1):
                session = developer.work(TRAINING_TASKS)
                report(
                    f"simulated developer, round {round_no}: {len(session.outcomes)} "
                    f"suggestions, {session.accepted} accepted, {session.rewritten} typed over"
                )
            timings["feedback"] = time.monotonic() - t

            report("training: pairs from the feedback, DPO on a LoRA adapter, evaluation gate")
            editor = BackgroundEditor(service.url)
            editor.start()
            t = time.monotonic()
            run_id = start_run(demo_settings, reason="demo", force=True)
            run = wait_run(demo_settings, run_id, timeout=1800)
            timings["train"] = time.monotonic() - t
            if run_exit_code(run) != 0:
                raise DemoError(
                    f"run {run_id} ended {run.get('status')}: {run.get('error') or run.get('gate')}"
                )
            version_after = str(run["candidate_version"])
            timings["swap"] = service.wait_for_version(version_after)
            # Keep the editor going until it has been answered by the new version too.
            deadline = time.monotonic() + 120
            while editor.versions.get(version_after, 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            editor.stop()
            report(
                f"  requests during training and swap: {sum(editor.versions.values())} "
                f"answered ({editor.versions}), {len(editor.failures)} failed"
            )
            report(f"  run {run_id} passed the gate; the service now serves {version_after}")

            t = time.monotonic()
            after, after_completions = annotated_share(client, HELDOUT_TASKS)
            timings["measure_after"] = time.monotonic() - t
            report(f"  annotated signatures after: {after:.0%}")
        timings["total"] = time.monotonic() - t0
        return DemoResult(
            before=before,
            after=after,
            version_before=version_before,
            version_after=version_after,
            run=run,
            pairs=run.get("data") or {},
            before_completions=before_completions,
            after_completions=after_completions,
            timings=timings,
            failed_requests=editor.failures,
            versions_served=editor.versions,
        )
    finally:
        if editor is not None:
            editor.stop()
        service.stop()
        if own_home and not keep:
            shutil.rmtree(demo_home, ignore_errors=True)


def format_result(result: DemoResult) -> str:
    gate = result.run.get("gate") or {}
    metrics = result.run.get("metrics") or {}
    data = result.run.get("data") or {}
    lines = [
        "",
        "prefloop demo: before and after one pass of the learning loop",
        f"  annotated signatures on {len(HELDOUT_TASKS)} held-out functions: "
        f"{result.before:.0%} ({result.version_before}) -> {result.after:.0%} "
        f"({result.version_after})",
    ]
    counts = data.get("pairs_available") or {}
    if counts:
        lines.append(
            f"  preference pairs: {counts.get('train', 0)} train, "
            f"{counts.get('heldout', 0)} held out"
        )
    if metrics:
        lines.append(
            f"  DPO: {metrics.get('steps', '?')} steps, "
            f"{metrics.get('step_seconds', 0) or 0:.1f} s/step"
        )
    prefs = gate.get("preferences") or {}
    for side in ("current", "candidate"):
        figures = prefs.get(side) or {}
        if figures:
            lines.append(
                f"  gate, {side}: held-out accuracy {figures.get('accuracy', 0):.2f}, "
                f"mean margin {figures.get('margin', 0):.2f}"
            )
    margin = prefs.get("margin_gain_interval")
    if margin:
        lines.append(
            f"  gate: margin gain {margin['estimate']:+.2f} "
            f"({margin['confidence']:.0%} interval {margin['low']:+.2f} to {margin['high']:+.2f}) "
            f"on {prefs.get('candidate', {}).get('pairs', 0)} held-out pairs "
            f"(floor {prefs.get('floor')})"
        )
    probes = gate.get("probes") or {}
    tolerance = probes.get("tolerance")
    if tolerance:
        cand, cur = probes["candidate"], probes["current"]
        lines.append(
            f"  gate: probes syntax-valid {cand.get('syntax_valid')} of "
            f"{cand.get('syntax_checked')} (current {cur.get('syntax_valid')}, "
            f"{tolerance['syntax_drop']} may drop), degenerate {cand['degenerate']} "
            f"(current {cur['degenerate']}, {tolerance['degenerate_rise']} more allowed)"
        )
    behaviour = gate.get("behaviour")
    if behaviour:
        lines.append(
            f"  gate: edit distance to the kept text on {behaviour['candidate']['contexts']} "
            f"held-out contexts {behaviour['current']['distance_to_chosen']:.3f} -> "
            f"{behaviour['candidate']['distance_to_chosen']:.3f} "
            f"({behaviour['closer']} closer, {behaviour['further']} further)"
        )
    lines.append(
        "  time: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.timings.items())
    )
    for task, before, after in zip(
        HELDOUT_TASKS, result.before_completions, result.after_completions, strict=True
    ):
        lines.append(f"    def {task.name}({task.params[0][0]}  {before!r} -> {after!r}")
    return "\n".join(lines)


def cmd_demo(args: Any) -> int:
    settings = settings_from_args(args)
    try:
        result = run_demo(
            settings,
            home=Path(args.demo_home) if args.demo_home else None,
            rounds=args.rounds,
            keep=args.keep,
        )
    except DemoError as exc:
        raise CommandError(str(exc)) from exc
    print(format_result(result))
    return 0


def add_parsers(sub: Any, common: Any) -> None:
    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="run the learning loop once with a simulated developer; prints before/after",
        description=(
            "Starts a service on the embedded model in a throw-away home (your own data is "
            "not touched), lets a simulated developer who wants type-annotated signatures "
            "work with it, retrains on that feedback, hot-swaps the new version in and "
            "shows how the served completions changed. Takes a few minutes on a CPU."
        ),
    )
    demo.add_argument("--rounds", type=int, default=1, help="passes over the training tasks")
    demo.add_argument("--demo-home", help="keep the demo's data here instead of a temp dir")
    demo.add_argument("--keep", action="store_true", help="keep the temp dir afterwards")
    demo.set_defaults(func=cmd_demo)
