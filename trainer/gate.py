"""The evaluation gate a candidate adapter must pass before it is promoted.

Two measurements, each of the candidate against the version served now (an adapter, or the
base model):

* Held-out preferences. For every held-out pair, Δ = log π(chosen | prompt) − log π(rejected
  | prompt), summed over the completion tokens. Accuracy is the share of pairs with Δ > 0,
  margin the mean Δ. The candidate's accuracy must reach the current version's plus
  ``train_gate_min_accuracy_gain`` and its margin must exceed the current's by more than
  ``train_gate_min_margin_gain``.
* Probes: a fixed, versioned set of short contexts (``trainer/probes/*.json``) completed
  greedily by both. The candidate must not regress: the syntax-valid rate of the Python
  probes (``ast``) may drop by at most ``train_gate_max_syntax_drop``, empty or repetitive
  completions may grow by at most ``train_gate_max_degenerate_increase``, and its total
  probe latency may be at most ``train_gate_latency_factor`` times the current's.

The pure parts (:func:`preference_summary`, :func:`compare_preferences`,
:func:`probe_quality`, :func:`compare_probes`) take plain numbers and strings; the verdicts
are the typed results of :mod:`prefloop.protocol` (``GateResult`` and its parts).
"""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Any

from prefloop import registry
from prefloop.protocol import (
    GateResult,
    GateThresholds,
    GateVerdict,
    PreferenceFigures,
    PreferenceVerdict,
    ProbeSample,
    ProbeSamples,
    ProbeTotals,
    ProbeVerdict,
)
from prefloop.settings import Settings


def thresholds_from_settings(settings: Settings) -> GateThresholds:
    """The gate's thresholds as the ``train_gate_*`` settings set them."""
    return GateThresholds(
        min_accuracy_gain=settings.train_gate_min_accuracy_gain,
        min_margin_gain=settings.train_gate_min_margin_gain,
        min_heldout=settings.train_gate_min_heldout,
        max_syntax_drop=settings.train_gate_max_syntax_drop,
        max_degenerate_increase=settings.train_gate_max_degenerate_increase,
        latency_factor=settings.train_gate_latency_factor,
    )


# ---- pure parts ---------------------------------------------------------------------


def preference_summary(deltas: Sequence[float]) -> PreferenceFigures:
    """Accuracy (share of Δ > 0) and margin (mean Δ) of per-pair log-prob differences."""
    n = len(deltas)
    if n == 0:
        return PreferenceFigures(pairs=0, accuracy=0.0, margin=0.0)
    return PreferenceFigures(
        pairs=n, accuracy=sum(1 for d in deltas if d > 0) / n, margin=sum(deltas) / n
    )


def compare_preferences(
    candidate: Sequence[float], current: Sequence[float], thresholds: GateThresholds
) -> PreferenceVerdict:
    """The preference half of the gate on per-pair Δ of the candidate and the current."""
    if len(candidate) != len(current):
        raise ValueError("candidate and current must be measured on the same pairs")
    cand = preference_summary(candidate)
    cur = preference_summary(current)
    reasons = []
    if len(candidate) < thresholds.min_heldout:
        reasons.append(
            f"only {len(candidate)} held-out pair(s); the gate needs {thresholds.min_heldout}"
        )
    else:
        need_acc = cur.accuracy + thresholds.min_accuracy_gain
        if cand.accuracy < need_acc - 1e-12:
            reasons.append(
                f"held-out accuracy {cand.accuracy:.3f} < required {need_acc:.3f} "
                f"(current {cur.accuracy:.3f})"
            )
        need_margin = cur.margin + thresholds.min_margin_gain
        if not cand.margin > need_margin:
            reasons.append(
                f"held-out margin {cand.margin:.4f} does not exceed {need_margin:.4f} "
                f"(current {cur.margin:.4f})"
            )
    return PreferenceVerdict(
        passed=not reasons,
        reasons=reasons,
        candidate=cand,
        current=cur,
        margin_gain=cand.margin - cur.margin,
        accuracy_gain=cand.accuracy - cur.accuracy,
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


def python_valid(prefix: str, completion: str, suffix: str, *, cut: bool = False) -> bool:
    """Whether the code parses with the completion in place (or with just its first line,
    as a single-line suggestion would show it). ``cut``: the token budget ended the
    completion, so its unfinished last line is left out, as the service trims it."""
    first_line = completion.split("\n", 1)[0]
    middles = [completion, first_line]
    if cut and "\n" in completion:
        middles.insert(1, completion[: completion.rindex("\n") + 1])
    for middle in middles:
        try:
            ast.parse(prefix + middle + suffix)
        except (SyntaxError, ValueError):
            continue
        return True
    return False


def probe_quality(probe: dict[str, Any], completion: str, *, cut: bool = False) -> dict[str, Any]:
    quality: dict[str, Any] = {"id": probe["id"], "degenerate": is_degenerate(completion)}
    if probe.get("language") == "python":
        quality["syntax_valid"] = python_valid(
            probe["prefix"], completion, probe["suffix"], cut=cut
        )
    return quality


def _probe_totals(results: Sequence[dict[str, Any]]) -> ProbeTotals:
    python = [r for r in results if "syntax_valid" in r]
    return ProbeTotals(
        probes=len(results),
        syntax_valid_rate=(
            sum(1 for r in python if r["syntax_valid"]) / len(python) if python else 1.0
        ),
        degenerate=sum(1 for r in results if r["degenerate"]),
        seconds=sum(float(r.get("seconds", 0.0)) for r in results),
    )


def compare_probes(
    candidate: Sequence[dict[str, Any]],
    current: Sequence[dict[str, Any]],
    thresholds: GateThresholds,
) -> ProbeVerdict:
    """The probe half of the gate on per-probe results (``probe_quality`` + ``seconds``)."""
    cand = _probe_totals(candidate)
    cur = _probe_totals(current)
    reasons = []
    if cand.syntax_valid_rate < cur.syntax_valid_rate - thresholds.max_syntax_drop - 1e-12:
        reasons.append(
            f"probe syntax-valid rate fell to {cand.syntax_valid_rate:.2f} "
            f"from {cur.syntax_valid_rate:.2f}"
        )
    if cand.degenerate > cur.degenerate + thresholds.max_degenerate_increase:
        reasons.append(
            f"{cand.degenerate} empty or repetitive probe completion(s), current {cur.degenerate}"
        )
    if cur.seconds > 0 and cand.seconds > thresholds.latency_factor * cur.seconds:
        reasons.append(
            f"probe latency {cand.seconds:.2f}s is over {thresholds.latency_factor}x "
            f"the current {cur.seconds:.2f}s"
        )
    return ProbeVerdict(passed=not reasons, reasons=reasons, candidate=cand, current=cur)


def decide(preferences: PreferenceVerdict, probes: ProbeVerdict) -> GateVerdict:
    """The gate passes when both halves pass; the reasons of both, preferences first."""
    return GateVerdict(
        passed=preferences.passed and probes.passed,
        reasons=[*preferences.reasons, *probes.reasons],
        preferences=preferences,
        probes=probes,
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
) -> GateResult:
    """Measure the candidate against the current version and decide."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
    verdict = decide(
        compare_preferences(candidate_deltas, current_deltas, thresholds),
        compare_probes(cand_probes, cur_probes, thresholds),
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
        probe_set=str(probes.get("version", probe_set)),
        thresholds=thresholds,
        current=registry.BASE if current_adapter is None else current_adapter.name,
        seconds=round(time.perf_counter() - started, 3),
    )
