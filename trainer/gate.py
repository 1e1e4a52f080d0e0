"""The evaluation gate a candidate adapter must pass before it is promoted.

Three measurements, each of the candidate against the version served now (an adapter, or
the base model), each decided on its noise rather than on a point estimate:

* Held-out preferences. For every held-out pair, Δ = log π(chosen | prompt) − log π(rejected
  | prompt), summed over the completion tokens. Accuracy is the share of pairs with Δ > 0
  (with its Wilson interval), margin the mean Δ. Per pair the candidate − current
  differences (margin gain, accuracy gain) get seeded bootstrap intervals; the half passes
  only when the margin gain's lower bound exceeds ``train_gate_min_margin_gain`` and the
  accuracy gain's lower bound reaches ``train_gate_min_accuracy_gain``. No decision rests
  on fewer held-out pairs than the floor, ``max(train_gate_min_heldout,
  ceil(train_gate_heldout_share × pairs))``. The same figures per user (the user of each
  held-out pair's suggestion) are reported beside them; they decide nothing.
* Probes: a fixed, versioned set of short contexts (``trainer/probes/*.json``) completed
  greedily by both. Counted in probes, the candidate may lose at most the tolerated number
  of syntax-valid completions (Python parsed with ``ast``, other languages with
  tree-sitter) and gain at most the tolerated number of empty or repetitive ones: the
  tolerance is ``train_gate_probe_noise_z`` standard deviations of the flips the probe set
  records between two equivalent base-model runs (see
  :func:`prefloop.trainer.probing.probe_tolerance`), or the explicit
  ``train_gate_max_syntax_drop`` / ``train_gate_max_degenerate_increase``, whichever is
  larger. A change beyond the tolerance refuses only when it is not itself noise: the
  probes that changed went worse significantly more often than better (a one-sided sign
  test, p below ``train_gate_probe_alpha``) — any trained adapter moves a few probes both
  ways. Its total probe latency may be at most
  ``train_gate_latency_factor`` times the current's.
* Behaviour (:mod:`prefloop.trainer.behaviour`): both models' own suggestions on the
  held-out contexts, compared with what the developer kept; the candidate must be closer.

The probe half lives in :mod:`prefloop.trainer.probing`, the behavioural one in
:mod:`prefloop.trainer.behaviour`. Every check yields a
:class:`~prefloop.protocol.GateFinding`: the figure, its value, what it had to reach, by
how much it missed and the noise it was judged against. The pure parts here
(:func:`heldout_floor`, :func:`preference_summary`, :func:`preferences_by_user`,
:func:`compare_preferences`, :func:`decide`) take plain numbers; the verdicts are the typed
results of :mod:`prefloop.protocol` (``GateResult`` and its parts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from prefloop import registry
from prefloop.protocol import (
    BehaviourVerdict,
    GateFinding,
    GateResult,
    GateThresholds,
    GateVerdict,
    Interval,
    PreferenceFigures,
    PreferenceVerdict,
    ProbeSample,
    ProbeSamples,
    ProbeVerdict,
    UserPreferenceFigures,
)
from prefloop.settings import Settings
from prefloop.trainer.intervals import bootstrap_mean_interval, wilson_interval
from prefloop.trainer.probing import compare_probes, load_probes, run_probes


def thresholds_from_settings(settings: Settings) -> GateThresholds:
    """The gate's thresholds as the ``train_gate_*`` settings set them."""
    return GateThresholds(
        min_accuracy_gain=settings.train_gate_min_accuracy_gain,
        min_margin_gain=settings.train_gate_min_margin_gain,
        min_heldout=settings.train_gate_min_heldout,
        max_syntax_drop=settings.train_gate_max_syntax_drop,
        max_degenerate_increase=settings.train_gate_max_degenerate_increase,
        latency_factor=settings.train_gate_latency_factor,
        heldout_share=settings.train_gate_heldout_share,
        confidence=settings.train_gate_confidence,
        bootstrap_samples=settings.train_gate_bootstrap_samples,
        probe_noise_z=settings.train_gate_probe_noise_z,
        probe_alpha=settings.train_gate_probe_alpha,
        behaviour_min_gain=settings.train_gate_behaviour_min_gain,
        behaviour_tolerance=settings.train_gate_behaviour_tolerance,
    )


# ---- pure parts ---------------------------------------------------------------------


def heldout_floor(pairs: int, min_heldout: int, share: float) -> int:
    """Fewest held-out pairs a decision may rest on when a run uses ``pairs`` pairs in all
    (train + held out): ``max(min_heldout, ceil(share × pairs))``."""
    return max(min_heldout, math.ceil(round(share * pairs, 9)))


def preference_summary(deltas: Sequence[float], confidence: float = 0.95) -> PreferenceFigures:
    """Accuracy (share of Δ > 0) with its Wilson interval, and margin (mean Δ), of per-pair
    log-prob differences."""
    n = len(deltas)
    if n == 0:
        return PreferenceFigures(pairs=0, accuracy=0.0, margin=0.0)
    right = sum(1 for d in deltas if d > 0)
    return PreferenceFigures(
        pairs=n,
        accuracy=right / n,
        margin=sum(deltas) / n,
        accuracy_interval=wilson_interval(right, n, confidence),
    )


def preferences_by_user(
    candidate: Sequence[float],
    current: Sequence[float],
    users: Sequence[str],
    confidence: float = 0.95,
) -> list[UserPreferenceFigures]:
    """The candidate's and the current's :func:`preference_summary` on each user's pairs,
    by user name, from per-pair Δ and the user of each pair."""
    if not len(candidate) == len(current) == len(users):
        raise ValueError("candidate, current and users must describe the same pairs")
    mine: dict[str, list[int]] = {}
    for i, user in enumerate(users):
        mine.setdefault(user, []).append(i)
    return [
        UserPreferenceFigures(
            user=user,
            candidate=preference_summary([candidate[i] for i in mine[user]], confidence),
            current=preference_summary([current[i] for i in mine[user]], confidence),
        )
        for user in sorted(mine)
    ]


def _pct(confidence: float) -> str:
    return f"{confidence:.0%}"


def _interval_text(interval: Interval, unit: str = "") -> str:
    return (
        f"{interval.estimate:+.3f}{unit} ({_pct(interval.confidence)} interval "
        f"{interval.low:+.3f} to {interval.high:+.3f})"
    )


def compare_preferences(
    candidate: Sequence[float],
    current: Sequence[float],
    thresholds: GateThresholds,
    *,
    floor: int | None = None,
    seed: int = 0,
    users: Sequence[str] | None = None,
) -> PreferenceVerdict:
    """The preference half of the gate on per-pair Δ of the candidate and the current.

    ``floor`` is the fewest held-out pairs to decide on (default ``min_heldout``); below it
    the half fails on that alone. Otherwise the paired differences per pair (margin:
    Δ_candidate − Δ_current; accuracy: [Δ_candidate > 0] − [Δ_current > 0]) get seeded
    bootstrap intervals, and the half passes only when the margin gain's lower bound is
    above ``min_margin_gain`` and the accuracy gain's lower bound reaches
    ``min_accuracy_gain``. ``users`` (the user of each pair) adds the figures per user
    (:func:`preferences_by_user`), which decide nothing.
    """
    if len(candidate) != len(current):
        raise ValueError("candidate and current must be measured on the same pairs")
    by_user = (
        None
        if users is None
        else preferences_by_user(candidate, current, users, thresholds.confidence)
    )
    confidence = thresholds.confidence
    cand = preference_summary(candidate, confidence)
    cur = preference_summary(current, confidence)
    n = len(candidate)
    need = thresholds.min_heldout if floor is None else floor
    reasons: list[str] = []
    findings: list[GateFinding] = []
    margin_interval: Interval | None = None
    accuracy_interval: Interval | None = None
    if n < need:
        reasons.append(
            f"only {n} held-out pair(s); the gate decides on no fewer than {need} "
            f"(max(min_heldout {thresholds.min_heldout}, "
            f"{thresholds.heldout_share:g} of the run's pairs)), {need - n} short"
        )
        findings.append(
            GateFinding(
                figure="heldout_pairs",
                passed=False,
                value=n,
                required=need,
                shortfall=need - n,
                noise="a floor, not a noise: fewer pairs cannot carry a decision",
            )
        )
    else:
        boot = {"confidence": confidence, "samples": thresholds.bootstrap_samples, "seed": seed}
        margin_interval = bootstrap_mean_interval(
            [a - b for a, b in zip(candidate, current, strict=True)], **boot
        )
        accuracy_interval = bootstrap_mean_interval(
            [float(a > 0) - float(b > 0) for a, b in zip(candidate, current, strict=True)], **boot
        )
        need_margin = thresholds.min_margin_gain
        margin_ok = margin_interval.low > need_margin
        findings.append(
            GateFinding(
                figure="heldout_margin_gain",
                passed=margin_ok,
                value=margin_interval.low,
                required=need_margin,
                shortfall=0.0 if margin_ok else need_margin - margin_interval.low,
                noise=f"paired bootstrap over {n} pairs: {_interval_text(margin_interval)}",
                detail=f"margin {cand.margin:.4f} against current {cur.margin:.4f}",
            )
        )
        if not margin_ok:
            reasons.append(
                f"held-out margin gain {_interval_text(margin_interval)} over {n} pairs: "
                f"its lower bound is {need_margin - margin_interval.low:.3f} short of "
                f"exceeding {need_margin:g} (margin {cand.margin:.4f}, current {cur.margin:.4f})"
            )
        need_accuracy = thresholds.min_accuracy_gain
        accuracy_ok = accuracy_interval.low >= need_accuracy - 1e-12
        findings.append(
            GateFinding(
                figure="heldout_accuracy_gain",
                passed=accuracy_ok,
                value=accuracy_interval.low,
                required=need_accuracy,
                shortfall=0.0 if accuracy_ok else need_accuracy - accuracy_interval.low,
                noise=f"paired bootstrap over {n} pairs: {_interval_text(accuracy_interval)}",
                detail=f"accuracy {cand.accuracy:.3f} against current {cur.accuracy:.3f}",
            )
        )
        if not accuracy_ok:
            reasons.append(
                f"held-out accuracy gain {_interval_text(accuracy_interval)} over {n} pairs: "
                f"its lower bound is {need_accuracy - accuracy_interval.low:.3f} short of "
                f"{need_accuracy:g} (accuracy {cand.accuracy:.3f}, current {cur.accuracy:.3f})"
            )
    return PreferenceVerdict(
        passed=not reasons,
        reasons=reasons,
        candidate=cand,
        current=cur,
        margin_gain=cand.margin - cur.margin,
        accuracy_gain=cand.accuracy - cur.accuracy,
        floor=need,
        margin_gain_interval=margin_interval,
        accuracy_gain_interval=accuracy_interval,
        findings=findings,
        by_user=by_user,
    )


def decide(
    preferences: PreferenceVerdict,
    probes: ProbeVerdict,
    behaviour: BehaviourVerdict | None = None,
) -> GateVerdict:
    """The gate passes when every half that ran passes; the reasons of all, preferences
    first, then probes, then behaviour."""
    halves: list[PreferenceVerdict | ProbeVerdict | BehaviourVerdict] = [preferences, probes]
    if behaviour is not None:
        halves.append(behaviour)
    return GateVerdict(
        passed=all(h.passed for h in halves),
        reasons=[reason for h in halves for reason in h.reasons],
        preferences=preferences,
        probes=probes,
        behaviour=behaviour,
    )


# ---- measuring with a model ---------------------------------------------------------


def completion_logprob(
    model: Any, tokenizer: Any, prompt: str, completion: str, max_length: int
) -> float:
    """Summed log-probability of ``completion`` after ``prompt``, tokenized as the trainer
    does (prompt + completion as one text; the completion starts where the two differ)."""
    import torch

    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    start = 0
    for a, b in zip(prompt_ids, full_ids, strict=False):
        if a != b:
            break
        start += 1
    full_ids = full_ids[:max_length]
    if start >= len(full_ids) or start == 0:
        # Nothing of the completion fits, or no context to condition on.
        start = max(1, min(start, len(full_ids) - 1))
    ids = torch.tensor([full_ids], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1].float()
    logps = torch.log_softmax(logits, dim=-1)
    targets = ids[0, 1:]
    token_logps = logps.gather(1, targets.unsqueeze(1)).squeeze(1)
    return float(token_logps[start - 1 :].sum())


def pair_deltas(
    model: Any, tokenizer: Any, pairs: Sequence[dict[str, Any]], max_length: int
) -> list[float]:
    return [
        completion_logprob(model, tokenizer, p["prompt"], p["chosen"], max_length)
        - completion_logprob(model, tokenizer, p["prompt"], p["rejected"], max_length)
        for p in pairs
    ]


@contextmanager
def _serving(model: Any, adapter: str | None) -> Iterator[None]:
    """The model as the named adapter, or the base model (adapters disabled) for None."""
    if adapter is None:
        with model.disable_adapter():
            yield
    else:
        model.set_adapter(adapter)
        with nullcontext():
            yield


def evaluate(
    settings: Settings,
    model_path: str,
    *,
    candidate_adapter: Path,
    current_adapter: Path | None,
    heldout: Sequence[dict[str, Any]],
    probe_set: str,
    max_length: int,
    probe_max_tokens: int,
    device: str = "cpu",
    thresholds: GateThresholds | None = None,
    floor: int | None = None,
    seed: int = 0,
) -> GateResult:
    """Measure the candidate against the current version and decide.

    ``floor``: fewest held-out pairs to decide on (default ``min_heldout``). The
    behavioural check runs on the first ``train_gate_behaviour_contexts`` held-out pairs
    (none when 0), ``train_gate_behaviour_max_tokens`` tokens each; ``seed`` seeds the
    bootstrap intervals.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefloop.trainer.behaviour import compare_behaviour, suggest

    thresholds = thresholds or thresholds_from_settings(settings)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    base: Any = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    base = base.to(device)
    model: Any = PeftModel.from_pretrained(base, str(candidate_adapter), adapter_name="candidate")
    current_name: str | None = None
    if current_adapter is not None:
        model.load_adapter(str(current_adapter), adapter_name="current")
        current_name = "current"
    model.eval()
    probes = load_probes(probe_set)
    with _serving(model, current_name):
        current_deltas = pair_deltas(model, tokenizer, heldout, max_length)
    with _serving(model, "candidate"):
        candidate_deltas = pair_deltas(model, tokenizer, heldout, max_length)
    # Probes alternate between the two so that machine load affects both alike.
    cur_probes: list[dict[str, Any]] = []
    cand_probes: list[dict[str, Any]] = []
    with _serving(model, "candidate"):  # warm-up: first generation pays for allocations
        run_probes(model, tokenizer, probes["probes"][:1], settings=settings, max_tokens=4)
    for probe in probes["probes"]:
        with _serving(model, current_name):
            cur_probes += run_probes(
                model, tokenizer, [probe], settings=settings, max_tokens=probe_max_tokens
            )
        with _serving(model, "candidate"):
            cand_probes += run_probes(
                model, tokenizer, [probe], settings=settings, max_tokens=probe_max_tokens
            )
    users = [str(p.get("user") or "") for p in heldout]
    behaviour = None
    contexts = list(heldout[: settings.train_gate_behaviour_contexts])
    if contexts:
        prompts = [p["prompt"] for p in contexts]
        budget = settings.train_gate_behaviour_max_tokens
        with _serving(model, current_name):
            current_texts = suggest(model, tokenizer, prompts, max_tokens=budget)
        with _serving(model, "candidate"):
            candidate_texts = suggest(model, tokenizer, prompts, max_tokens=budget)
        behaviour = compare_behaviour(
            candidate_texts, current_texts, contexts, thresholds, seed=seed
        )
    verdict = decide(
        compare_preferences(
            candidate_deltas, current_deltas, thresholds, floor=floor, seed=seed, users=users
        ),
        compare_probes(cand_probes, cur_probes, thresholds, noise=probes.get("noise")),
        behaviour,
    )
    # Probe completions are model output on fixed probe code, never user code.
    samples = ProbeSamples(
        candidate=[ProbeSample(id=r["id"], completion=r["completion"]) for r in cand_probes],
        current=[ProbeSample(id=r["id"], completion=r["completion"]) for r in cur_probes],
    )
    return GateResult(
        passed=verdict.passed,
        reasons=verdict.reasons,
        preferences=verdict.preferences,
        probes=verdict.probes.model_copy(update={"samples": samples}),
        behaviour=verdict.behaviour,
        probe_set=str(probes.get("version", probe_set)),
        thresholds=thresholds,
        current=registry.BASE if current_adapter is None else current_adapter.name,
        seconds=round(time.perf_counter() - started, 3),
    )
