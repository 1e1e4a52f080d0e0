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
  ceil(train_gate_heldout_share × pairs))``.
* Probes: a fixed, versioned set of short contexts (``trainer/probes/*.json``) completed
  greedily by both. Counted in probes, the candidate may lose at most the tolerated number
  of syntax-valid completions (Python parsed with ``ast``, other languages with
  tree-sitter) and gain at most the tolerated number of empty or repetitive ones: the
  tolerance is ``train_gate_probe_noise_z`` standard deviations of the flips the probe set
  records between two equivalent base-model runs (see :func:`probe_tolerance`), or the
  explicit ``train_gate_max_syntax_drop`` / ``train_gate_max_degenerate_increase``,
  whichever is larger. Its total probe latency may be at most
  ``train_gate_latency_factor`` times the current's.
* Behaviour (:mod:`prefloop.trainer.behaviour`): both models' own suggestions on the
  held-out contexts, compared with what the developer kept; the candidate must be closer.

Every check yields a :class:`~prefloop.protocol.GateFinding`: the figure, its value, what
it had to reach, by how much it missed and the noise it was judged against. The pure
parts (:func:`heldout_floor`, :func:`preference_summary`, :func:`compare_preferences`,
:func:`probe_quality`, :func:`probe_tolerance`, :func:`compare_probes`, :func:`decide`)
take plain numbers and strings; the verdicts are the typed results of
:mod:`prefloop.protocol` (``GateResult`` and its parts).
"""

from __future__ import annotations

import ast
import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Any

from prefloop import registry
from prefloop.checks.treesitter import GrammarMissing, parser_for, syntax_problems
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
    ProbeTolerance,
    ProbeTotals,
    ProbeVerdict,
)
from prefloop.settings import Settings
from prefloop.trainer.intervals import bootstrap_mean_interval, wilson_interval


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
) -> PreferenceVerdict:
    """The preference half of the gate on per-pair Δ of the candidate and the current.

    ``floor`` is the fewest held-out pairs to decide on (default ``min_heldout``); below it
    the half fails on that alone. Otherwise the paired differences per pair (margin:
    Δ_candidate − Δ_current; accuracy: [Δ_candidate > 0] − [Δ_current > 0]) get seeded
    bootstrap intervals, and the half passes only when the margin gain's lower bound is
    above ``min_margin_gain`` and the accuracy gain's lower bound reaches
    ``min_accuracy_gain``.
    """
    if len(candidate) != len(current):
        raise ValueError("candidate and current must be measured on the same pairs")
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
    )


def is_degenerate(text: str) -> bool:
    """Empty, or repetitive: a line three times or more, or few distinct words."""
    if not text.strip():
        return True
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(lines.count(line) >= 3 for line in set(lines)):
        return True
    words = text.split()
    return len(words) >= 8 and len(set(words)) / len(words) < 0.3


def _middles(completion: str, cut: bool) -> list[str]:
    """The completion, then (when the token budget cut it) all but its unfinished last
    line, then its first line alone, as the service would show it."""
    first_line = completion.split("\n", 1)[0]
    middles = [completion, first_line]
    if cut and "\n" in completion:
        middles.insert(1, completion[: completion.rindex("\n") + 1])
    return middles


def python_valid(prefix: str, completion: str, suffix: str, *, cut: bool = False) -> bool:
    """Whether the code parses with the completion in place (or with just its first line,
    as a single-line suggestion would show it). ``cut``: the token budget ended the
    completion, so its unfinished last line is left out, as the service trims it."""
    for middle in _middles(completion, cut):
        try:
            ast.parse(prefix + middle + suffix)
        except (SyntaxError, ValueError):
            continue
        return True
    return False


def tree_valid(
    language: str, prefix: str, completion: str, suffix: str, *, cut: bool = False
) -> bool | None:
    """Like :func:`python_valid` for a language tree-sitter parses (no errors in the
    tree); None when no grammar for ``language`` is installed."""
    try:
        parser_for(language)
    except GrammarMissing:
        return None
    return any(
        not syntax_problems(language, prefix + m + suffix) for m in _middles(completion, cut)
    )


def probe_quality(probe: dict[str, Any], completion: str, *, cut: bool = False) -> dict[str, Any]:
    """A probe completion's verdicts: ``degenerate``, and ``syntax_valid`` when the
    probe's language is parsed (Python with ``ast``, others with tree-sitter)."""
    quality: dict[str, Any] = {"id": probe["id"], "degenerate": is_degenerate(completion)}
    language = probe.get("language")
    if language == "python":
        quality["syntax_valid"] = python_valid(
            probe["prefix"], completion, probe["suffix"], cut=cut
        )
    elif isinstance(language, str):
        valid = tree_valid(language, probe["prefix"], completion, probe["suffix"], cut=cut)
        if valid is not None:
            quality["syntax_valid"] = valid
    return quality


def _probe_totals(results: Sequence[dict[str, Any]]) -> ProbeTotals:
    checked = [r for r in results if "syntax_valid" in r]
    valid = sum(1 for r in checked if r["syntax_valid"])
    return ProbeTotals(
        probes=len(results),
        syntax_valid_rate=valid / len(checked) if checked else 1.0,
        degenerate=sum(1 for r in results if r["degenerate"]),
        seconds=sum(float(r.get("seconds", 0.0)) for r in results),
        syntax_checked=len(checked),
        syntax_valid=valid,
    )


def probe_tolerance(probes: int, flips: float, measured_probes: int, z: float) -> int:
    """How many probes may change for the worse before it counts: ``z`` standard
    deviations of the noise, in probes.

    ``flips`` of ``measured_probes`` probes changed between two runs of the base model that
    should be equivalent; scaled to ``probes``, that many flips are expected (at least one:
    a single flip is always possible), and a net change of independent ±1 flips has that
    variance. ``z`` of 0 tolerates nothing.
    """
    if z <= 0 or probes <= 0:
        return 0
    expected = flips * probes / measured_probes if measured_probes > 0 else 0.0
    return math.ceil(round(z * math.sqrt(max(1.0, expected)), 9))


def compare_probes(
    candidate: Sequence[dict[str, Any]],
    current: Sequence[dict[str, Any]],
    thresholds: GateThresholds,
    noise: dict[str, Any] | None = None,
) -> ProbeVerdict:
    """The probe half of the gate on per-probe results (``probe_quality`` + ``seconds``).

    Counted in probes: the candidate's syntax-valid probes may fall short of the current's
    by at most the noise tolerance (:func:`probe_tolerance` on the probe set's measured
    ``noise``) or ``max_syntax_drop`` of the parsed probes, whichever is larger; its
    degenerate completions may exceed the current's by the noise tolerance or
    ``max_degenerate_increase``, whichever is larger.
    """
    cand = _probe_totals(candidate)
    cur = _probe_totals(current)
    noise = noise or {}
    measured = int(noise.get("probes", 0))
    z = thresholds.probe_noise_z
    checked = cur.syntax_checked or 0
    syntax_noise = probe_tolerance(checked, float(noise.get("syntax_flips", 0)), measured, z)
    degenerate_noise = probe_tolerance(
        cur.probes, float(noise.get("degenerate_flips", 0)), measured, z
    )
    allowed_drop = max(syntax_noise, math.floor(round(thresholds.max_syntax_drop * checked, 9)))
    allowed_rise = max(degenerate_noise, thresholds.max_degenerate_increase)
    how = str(noise.get("how", "no measured noise in the probe set"))
    tolerance = ProbeTolerance(syntax_drop=allowed_drop, degenerate_rise=allowed_rise, measured=how)
    noise_text = (
        f"noise {noise.get('syntax_flips', 0)} syntax and {noise.get('degenerate_flips', 0)} "
        f"degenerate flip(s) in {measured} probes between equivalent base-model runs, "
        f"z {z:g}"
    )
    reasons: list[str] = []
    findings: list[GateFinding] = []
    drop = (cur.syntax_valid or 0) - (cand.syntax_valid or 0)
    syntax_ok = drop <= allowed_drop
    findings.append(
        GateFinding(
            figure="probe_syntax_valid_drop",
            passed=syntax_ok,
            value=drop,
            required=allowed_drop,
            shortfall=0.0 if syntax_ok else drop - allowed_drop,
            noise=noise_text,
            detail=(
                f"{cand.syntax_valid} of {cand.syntax_checked} parse (current {cur.syntax_valid})"
            ),
        )
    )
    if not syntax_ok:
        reasons.append(
            f"probe syntax-valid completions fell by {drop} ({cand.syntax_valid} of "
            f"{cand.syntax_checked}, current {cur.syntax_valid}); {allowed_drop} allowed "
            f"({noise_text}), {drop - allowed_drop} over"
        )
    rise = cand.degenerate - cur.degenerate
    degenerate_ok = rise <= allowed_rise
    findings.append(
        GateFinding(
            figure="probe_degenerate_rise",
            passed=degenerate_ok,
            value=rise,
            required=allowed_rise,
            shortfall=0.0 if degenerate_ok else rise - allowed_rise,
            noise=noise_text,
            detail=f"{cand.degenerate} of {cand.probes} (current {cur.degenerate})",
        )
    )
    if not degenerate_ok:
        reasons.append(
            f"{cand.degenerate} empty or repetitive probe completion(s), current "
            f"{cur.degenerate}: {rise} more, {allowed_rise} allowed ({noise_text}), "
            f"{rise - allowed_rise} over"
        )
    latency_ok = not (cur.seconds > 0 and cand.seconds > thresholds.latency_factor * cur.seconds)
    ratio = cand.seconds / cur.seconds if cur.seconds > 0 else 1.0
    findings.append(
        GateFinding(
            figure="probe_latency_ratio",
            passed=latency_ok,
            value=ratio,
            required=thresholds.latency_factor,
            shortfall=0.0 if latency_ok else ratio - thresholds.latency_factor,
            noise="probes alternate between the two models, so load affects both alike",
        )
    )
    if not latency_ok:
        reasons.append(
            f"probe latency {cand.seconds:.2f}s is over {thresholds.latency_factor}x "
            f"the current {cur.seconds:.2f}s ({ratio:.2f}x)"
        )
    return ProbeVerdict(
        passed=not reasons,
        reasons=reasons,
        candidate=cand,
        current=cur,
        tolerance=tolerance,
        findings=findings,
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


def load_probes(name: str) -> dict[str, Any]:
    """A probe set: a name shipped in ``trainer/probes`` or a path to a JSON file."""
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        resource = resources.files("prefloop.trainer") / "probes" / f"{name}.json"
        if not resource.is_file():
            raise ValueError(f"unknown probe set {name!r}")
        text = resource.read_text(encoding="utf-8")
    data = json.loads(text)
    for probe in data["probes"]:
        missing = {"id", "language", "path", "prefix", "suffix"} - set(probe)
        if missing:
            raise ValueError(f"probe {probe.get('id', '?')} lacks {', '.join(sorted(missing))}")
    return dict(data)


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


def run_probes(
    model: Any,
    tokenizer: Any,
    probes: Sequence[dict[str, Any]],
    *,
    settings: Settings,
    max_tokens: int,
) -> list[dict[str, Any]]:
    """Greedy completions of the probes with the engine's prompt format, timed."""
    import torch

    from prefloop.prompting import build_prompt, resolve_template, special_tokens

    template = resolve_template(settings.fim_template, special_tokens(tokenizer))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else None
    out = []
    for probe in probes:
        prompt = build_prompt(
            probe["prefix"],
            probe["suffix"],
            template=template,
            tokenizer=tokenizer,
            max_prompt_tokens=settings.max_prompt_tokens,
            language=probe["language"],
            path=probe["path"],
        )
        inputs = tokenizer(prompt.text, return_tensors="pt", add_special_tokens=False).to(
            model.device
        )
        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=max_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad_id if pad_id is not None else tokenizer.eos_token_id,
            )
        seconds = time.perf_counter() - started
        ids = [int(t) for t in output[0][inputs["input_ids"].shape[1] :]]
        budget_spent = len(ids) >= max_tokens
        if tokenizer.eos_token_id in ids:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
            budget_spent = False
        text = tokenizer.decode(ids, skip_special_tokens=True)
        cuts = [text.find(s) for s in prompt.stop if s and s in text]
        if cuts:
            text = text[: min(cuts)]
            budget_spent = False
        result = probe_quality(probe, text, cut=budget_spent)
        result["seconds"] = seconds
        result["completion"] = text
        out.append(result)
    return out


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
        compare_preferences(candidate_deltas, current_deltas, thresholds, floor=floor, seed=seed),
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
