"""One benchmark service: a real ``prefloop serve`` on its own home, one or two simulated
developers working through it in rounds, a retrain with the default training settings
after each round (``POST /admin/retrain`` with ``force``), and held-out figures on the
served version before the first round and after every retrain.

Every round brings new code to write: round r works through its own slice of the
developer's training contexts (the seed's order, contexts ``[(r-1)*k, r*k)``; k is
``train_contexts`` or else the training contexts shared out over the rounds), so each
retrain has new feedback to learn from. The held-out contexts are the same every round.

With ``adapters = "per_user"`` the service trains one adapter per developer: the held-out
figures are then asked for as each developer (so each is served their own version), and
HumanEval runs as the first developer.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.common import start_server
from bench.loop.corpus import TasteCorpus, corpus, round_contexts
from bench.loop.developer import Timing, work
from bench.loop.humaneval import pass_at_1, problems
from bench.loop.metrics import as_dict, evaluate, summarise
from bench.loop.tastes import TASTES
from tests.waiting import wait_until

ADMIN_TOKEN = "bench-loop-admin"
FINISHED = ("succeeded", "failed", "rejected")


@dataclass(frozen=True)
class LoopSettings:
    """How one benchmark run is shaped. Training itself always runs on the service's
    defaults; ``seed`` only orders the contexts and seeds the run (``PREFLOOP_TRAIN_SEED``).
    ``train_contexts`` is the number of new training contexts per round (None: the
    training contexts over ``rounds``); ``heldout_contexts`` caps the held-out ones.
    ``adapters`` is the service's ``PREFLOOP_TRAIN_ADAPTERS`` (``shared`` or ``per_user``)."""

    rounds: int = 3
    max_tokens: int = 24
    mode: str = "single_line"
    humaneval_problems: int = 16
    humaneval_tokens: int = 96
    train_contexts: int | None = None
    heldout_contexts: int | None = None
    timing: Timing = field(default_factory=Timing)
    run_timeout: float = 7200.0
    service_env: dict[str, str] = field(default_factory=dict)
    adapters: str = "shared"
    corpora: dict[str, TasteCorpus] = field(default_factory=dict)

    def corpus_of(self, taste: str) -> TasteCorpus:
        """The contexts of ``taste``: the benchmark's own unless replaced in ``corpora``."""
        return self.corpora.get(taste) or corpus(taste)


@dataclass
class DeveloperResult:
    """One developer's held-out figures per round, and the scored contexts of each."""

    user: str
    taste: str
    rounds: list[dict[str, Any]] = field(default_factory=list)
    scored: list[list[dict[str, Any]]] = field(default_factory=list)
    worked: list[list[dict[str, Any]]] = field(default_factory=list)


@dataclass
class ServiceResult:
    """Everything one service measured: developers, runs, correctness per round."""

    seed: int
    developers: list[DeveloperResult]
    runs: list[dict[str, Any]] = field(default_factory=list)
    humaneval: list[float] = field(default_factory=list)
    # the ids of the HumanEval problems solved in each round
    humaneval_solved: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0

    def syntax_valid(self) -> list[float | None]:
        """The probe set's syntax-valid rate of what was served in each round (round 0:
        before any retrain), from the gates that measured it: a retrain's gate measures
        the version served during its round and its candidate, which is served next round
        when promoted. None where no gate measured what was served (every retrain refused
        before training)."""
        served = [
            tuple(str(dev.rounds[r].get("version")) for dev in self.developers)
            for r in range(min((len(dev.rounds) for dev in self.developers), default=0))
        ]
        rates: dict[tuple[str, ...], float] = {}
        for round_no, run in enumerate(self.runs, start=1):
            if run.get("syntax_valid_current") is not None and round_no - 1 < len(served):
                rates[served[round_no - 1]] = run["syntax_valid_current"]
            promoted = run.get("status") == "succeeded"
            measured = run.get("syntax_valid_candidate") is not None
            if promoted and measured and round_no < len(served):
                rates[served[round_no]] = run["syntax_valid_candidate"]
        return [rates.get(key) for key in served]


def _retrain(client: httpx.Client, timeout: float) -> dict[str, Any]:
    """Start a forced run on the service's default settings and wait until it finished;
    a refusal comes back as ``{"status": "refused", ...}``."""
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    response = client.post("/admin/retrain", json={"force": True}, headers=headers)
    if response.status_code != 202:
        return {"status": "refused", "http_status": response.status_code, "error": response.text}
    run_id = response.json()["run_id"]

    def look() -> dict[str, Any]:
        body: dict[str, Any] = client.get(f"/admin/runs/{run_id}", headers=headers).json()
        return body

    return wait_until(
        look,
        lambda run: run.get("status") in FINISHED,
        what=f"training run {run_id} to finish",
        timeout=timeout,
        interval=2.0,
        retry_on=(httpx.HTTPError,),
    )


def _served_version(client: httpx.Client) -> str:
    return str(client.get("/healthz").json().get("model_version"))


def _served_users(client: httpx.Client) -> dict[str, str]:
    return dict(client.get("/healthz").json().get("user_versions") or {})


def _promoted_per_user(run: dict[str, Any]) -> dict[str, str]:
    """The users whose own candidate a per-user run promoted, and that candidate."""
    return {
        user: str(mine["candidate_version"])
        for user, mine in (run.get("users") or {}).items()
        if mine.get("promoted")
    }


def _serves_all(wanted: dict[str, str], served: dict[str, str]) -> bool:
    return all(served.get(user) == version for user, version in wanted.items())


def _mean_rate(rates: list[Any]) -> float | None:
    known = [float(r) for r in rates if r is not None]
    return sum(known) / len(known) if known else None


def _run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """The run's figures the report needs: outcome, data, steps, probe syntax-valid rates
    (of a per-user run: the mean over the users trained)."""
    gate = run.get("gate") or {}
    probes = gate.get("probes") or {}
    users = run.get("users") or {}
    if users:
        user_probes = [(m.get("gate") or {}).get("probes") or {} for m in users.values()]
        probes = {
            side: {
                "syntax_valid_rate": _mean_rate(
                    [(p.get(side) or {}).get("syntax_valid_rate") for p in user_probes]
                )
            }
            for side in ("current", "candidate")
        }
    data = run.get("data") or {}
    available = data.get("pairs_available") or {}
    metrics = run.get("metrics") or {}
    return {
        "id": run.get("id"),
        "status": run.get("status"),
        "candidate_version": run.get("candidate_version"),
        "train_pairs": available.get("train", data.get("train")),
        "heldout_pairs": available.get("heldout", data.get("heldout")),
        "steps": metrics.get("steps"),
        "syntax_valid_current": (probes.get("current") or {}).get("syntax_valid_rate"),
        "syntax_valid_candidate": (probes.get("candidate") or {}).get("syntax_valid_rate"),
        "gate_reasons": gate.get("reasons"),
        "error": run.get("error"),
        "promoted_per_user": _promoted_per_user(run),
    }


def run_service(
    model: str | Path,
    home: Path,
    developers: Sequence[tuple[str, str]],
    *,
    seed: int,
    settings: LoopSettings,
    report: Callable[[str], None] = print,
) -> ServiceResult:
    """Run the loop on a fresh service at ``home`` for ``developers`` (user, taste).
    ``home`` must not hold anything yet: a service would serve what an earlier run
    trained there."""
    if home.exists() and any(home.iterdir()):
        raise FileExistsError(
            f"{home} is not empty: the loop starts from a fresh home (remove it, or choose "
            "another --work-dir)"
        )
    started = time.monotonic()
    env = {
        "PREFLOOP_ADMIN_TOKEN": ADMIN_TOKEN,
        "PREFLOOP_TRAIN_SCHEDULE": "off",
        "PREFLOOP_SWAP_POLL_SECONDS": "1",
        "PREFLOOP_TRAIN_SEED": str(seed),
        "PREFLOOP_TRAIN_ADAPTERS": settings.adapters,
        **settings.service_env,
    }
    subset = problems(settings.humaneval_problems)
    per_user = settings.adapters == "per_user"
    result = ServiceResult(seed, [DeveloperResult(user, taste) for user, taste in developers])
    server = start_server(home, model, extra_env=env, timeout=600)
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client:

            def measure(round_no: int) -> None:
                for dev in result.developers:
                    taste_corpus = settings.corpus_of(dev.taste)
                    heldout = list(taste_corpus.heldout[: settings.heldout_contexts])
                    version, scored = evaluate(
                        client,
                        TASTES[dev.taste],
                        heldout,
                        max_tokens=settings.max_tokens,
                        user=dev.user if per_user else f"{dev.user}-heldout",
                        mode=settings.mode,
                    )
                    figures = summarise(round_no, version, scored)
                    dev.rounds.append(as_dict(figures))
                    dev.scored.append([as_dict(s) for s in scored])
                    report(
                        f"  seed {seed} round {round_no} {dev.user} ({dev.taste}) on {version}: "
                        f"acceptance {figures.acceptance:.0%}, edit distance "
                        f"{figures.edit_distance:.3f}, taste {figures.taste_share:.0%}"
                    )
                if subset:
                    share, solved = pass_at_1(
                        client,
                        subset,
                        max_tokens=settings.humaneval_tokens,
                        **({"user": developers[0][0]} if per_user else {}),
                    )
                    result.humaneval.append(share)
                    result.humaneval_solved.append(solved)
                    report(f"  seed {seed} round {round_no} HumanEval pass@1 {share:.0%}")

            measure(0)
            for round_no in range(1, settings.rounds + 1):
                for dev in result.developers:
                    contexts = round_contexts(
                        settings.corpus_of(dev.taste).train,
                        seed,
                        round_no,
                        settings.rounds,
                        settings.train_contexts,
                    )
                    worked = work(
                        server.url,
                        home / f"lsp-{dev.user}",
                        TASTES[dev.taste],
                        contexts,
                        user=dev.user,
                        max_tokens=settings.max_tokens,
                        timing=settings.timing,
                        mode=settings.mode,
                    )
                    dev.worked.append([w.__dict__ for w in worked])
                    kinds = [w.reaction for w in worked]
                    report(
                        f"  seed {seed} round {round_no} {dev.user} worked {len(worked)} "
                        f"contexts: "
                        + ", ".join(f"{k} {kinds.count(k)}" for k in sorted(set(kinds)))
                    )
                run = _retrain(client, settings.run_timeout)
                summary = _run_summary(run)
                result.runs.append(summary)
                report(f"  seed {seed} round {round_no} retrain: {summary}")
                candidate = summary["candidate_version"]
                if per_user and summary["promoted_per_user"]:
                    wanted = summary["promoted_per_user"]
                    wait_until(
                        lambda: _served_users(client),
                        partial(_serves_all, wanted),
                        what=f"the service to serve the users {wanted}",
                        timeout=300,
                        interval=0.5,
                        retry_on=(httpx.HTTPError,),
                    )
                elif summary["status"] == "succeeded" and candidate:
                    wait_until(
                        lambda: _served_version(client),
                        partial(operator.eq, candidate),
                        what=f"the service to serve {candidate}",
                        timeout=300,
                        interval=0.5,
                        retry_on=(httpx.HTTPError,),
                    )
                measure(round_no)
    finally:
        server.stop()
    result.seconds = time.monotonic() - started
    return result
