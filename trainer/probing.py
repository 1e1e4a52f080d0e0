"""The gate's probe half: a fixed, versioned probe set completed by both models.

A probe set (``trainer/probes/*.json``) holds short contexts in several languages and the
noise measured on the base model (``bench/probe_noise.py``): how many probes flipped
between two runs that should be equivalent. Each completion is judged ``degenerate``
(empty or repetitive) and, where the language is parsed, ``syntax_valid`` (Python with
``ast``, the others with tree-sitter). :func:`compare_probes` counts, in probes, how many
the candidate lost or spoilt against the current version and compares that with a
tolerance derived from the noise (:func:`probe_tolerance`). Probes with ``tests``
(functions ending at their docstring) are also run: the completed function's tests
``passes`` or not, and the candidate must not pass fewer beyond the noise.

Everything but :func:`run_probes` (which runs a model; torch imported lazily) is pure.
"""

from __future__ import annotations

import ast
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from prefloop.checks.treesitter import GrammarMissing, parser_for, syntax_problems
from prefloop.protocol import GateFinding, GateThresholds, ProbeTolerance, ProbeTotals, ProbeVerdict
from prefloop.settings import Settings


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


TEST_SECONDS = 10.0
"""How long a functional probe's tests may run."""


def function_body(completion: str) -> str:
    """A completed function as the service's block rule shows it: up to the first
    non-blank line back at column 0 (the function ended)."""
    lines = completion.split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and not line[0].isspace():
            break
        kept.append(line)
    return "\n".join(kept).rstrip()


def runs_clean(program: str, *, time_limit: float = TEST_SECONDS) -> bool:
    """Whether a Python program exits with status 0 within ``time_limit`` seconds, run in
    a separate isolated interpreter (``-I``) in an empty temporary directory."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="prefloop-run-") as cwd:
        try:
            result = subprocess.run(
                [sys.executable, "-I", "-c", program],
                cwd=cwd,
                capture_output=True,
                timeout=time_limit,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
    return result.returncode == 0


def passes_tests(probe: dict[str, Any], completion: str) -> bool:
    """Whether a functional probe's tests pass on its function as completed
    (:func:`runs_clean`)."""
    return runs_clean(f"{probe['prefix']}{function_body(completion)}\n\n\n{probe['tests']}\n")


def probe_quality(probe: dict[str, Any], completion: str, *, cut: bool = False) -> dict[str, Any]:
    """A probe completion's verdicts: ``degenerate``, ``syntax_valid`` when the probe's
    language is parsed (Python with ``ast``, others with tree-sitter), and ``passes`` when
    the probe has tests (:func:`passes_tests`)."""
    quality: dict[str, Any] = {"id": probe["id"], "degenerate": is_degenerate(completion)}
    if probe.get("tests"):
        quality["passes"] = passes_tests(probe, completion)
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
    tested = [r for r in results if "passes" in r]
    return ProbeTotals(
        probes=len(results),
        syntax_valid_rate=valid / len(checked) if checked else 1.0,
        degenerate=sum(1 for r in results if r["degenerate"]),
        seconds=sum(float(r.get("seconds", 0.0)) for r in results),
        syntax_checked=len(checked),
        syntax_valid=valid,
        functional_checked=len(tested),
        functional_passed=sum(1 for r in tested if r["passes"]),
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


def sign_test(worse: int, better: int) -> float:
    """One-sided sign test: the chance of at least ``worse`` of the ``worse + better``
    changed probes going worse if each change were as likely either way."""
    n = worse + better
    if worse <= 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(worse, n + 1)) / 2**n


def _flips(
    candidate: Sequence[dict[str, Any]], current: Sequence[dict[str, Any]], key: str, bad: bool
) -> tuple[int, int]:
    """Probes (paired by id) that went worse and better on ``key``; ``bad`` is the value
    that counts as worse (True for ``degenerate``, False for ``syntax_valid``)."""
    before = {r["id"]: r[key] for r in current if key in r}
    worse = better = 0
    for r in candidate:
        if key not in r or r["id"] not in before or bool(r[key]) == bool(before[r["id"]]):
            continue
        if bool(r[key]) == bad:
            worse += 1
        else:
            better += 1
    return worse, better


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
    ``max_degenerate_increase``, whichever is larger; the functions whose tests pass may
    fall short by the noise tolerance. A change beyond the tolerance refuses only when the
    sign test on the probes that changed (paired by id) is below ``probe_alpha``.
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
    tested = cur.functional_checked or 0
    allowed_functional = probe_tolerance(
        tested, float(noise.get("functional_flips", 0)), measured, z
    )
    how = str(noise.get("how", "no measured noise in the probe set"))
    tolerance = ProbeTolerance(
        syntax_drop=allowed_drop,
        degenerate_rise=allowed_rise,
        measured=how,
        functional_drop=allowed_functional if tested else None,
    )
    noise_text = (
        f"noise {noise.get('syntax_flips', 0)} syntax and {noise.get('degenerate_flips', 0)} "
        f"degenerate flip(s) in {measured} probes between equivalent base-model runs, "
        f"z {z:g}"
    )
    reasons: list[str] = []
    findings: list[GateFinding] = []
    alpha = thresholds.probe_alpha

    def paired(key: str, bad: bool) -> tuple[float, str]:
        worse, better = _flips(candidate, current, key, bad)
        p = sign_test(worse, better)
        return p, f"{worse} worse, {better} better: sign test p {p:.3g} (refuses below {alpha:g})"

    def counted(
        figure: str, key: str, bad: bool, change: int, allowed: int, detail: str, what: str
    ) -> None:
        """A change counted in probes: within ``allowed``, or noise by the sign test on the
        probes that changed ``key``; ``what`` opens the refusal's reason."""
        p, flips = paired(key, bad)
        ok = change <= allowed or p >= alpha
        findings.append(
            GateFinding(
                figure=figure,
                passed=ok,
                value=change,
                required=allowed,
                shortfall=0.0 if ok else change - allowed,
                noise=f"{noise_text}; {flips}",
                detail=detail,
            )
        )
        if not ok:
            reasons.append(f"{what}, {change - allowed} over; {flips}")

    drop = (cur.syntax_valid or 0) - (cand.syntax_valid or 0)
    counted(
        "probe_syntax_valid_drop",
        "syntax_valid",
        False,
        drop,
        allowed_drop,
        f"{cand.syntax_valid} of {cand.syntax_checked} parse (current {cur.syntax_valid})",
        f"probe syntax-valid completions fell by {drop} ({cand.syntax_valid} of "
        f"{cand.syntax_checked}, current {cur.syntax_valid}); {allowed_drop} allowed "
        f"({noise_text})",
    )
    rise = cand.degenerate - cur.degenerate
    counted(
        "probe_degenerate_rise",
        "degenerate",
        True,
        rise,
        allowed_rise,
        f"{cand.degenerate} of {cand.probes} (current {cur.degenerate})",
        f"{cand.degenerate} empty or repetitive probe completion(s), current "
        f"{cur.degenerate}: {rise} more, {allowed_rise} allowed ({noise_text})",
    )
    if tested:
        lost = (cur.functional_passed or 0) - (cand.functional_passed or 0)
        counted(
            "probe_functional_drop",
            "passes",
            False,
            lost,
            allowed_functional,
            f"{cand.functional_passed} of {cand.functional_checked} functions pass "
            f"their tests (current {cur.functional_passed})",
            f"functions completed by the candidate pass fewer tests: "
            f"{cand.functional_passed} of {cand.functional_checked}, current "
            f"{cur.functional_passed}; {allowed_functional} fewer allowed ({noise_text})",
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


@dataclass(frozen=True)
class Completion:
    """A greedy completion: its text up to the end-of-text token, whether it used the whole
    token budget, and how long it took."""

    text: str
    budget_spent: bool
    seconds: float


def greedy_completion(model: Any, tokenizer: Any, prompt: str, *, max_tokens: int) -> Completion:
    """Complete ``prompt`` greedily with at most ``max_tokens`` new tokens (torch imported
    here, lazily)."""
    import torch

    pad_id = tokenizer.pad_token_id
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
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
    return Completion(tokenizer.decode(ids, skip_special_tokens=True), budget_spent, seconds)


def run_probes(
    model: Any,
    tokenizer: Any,
    probes: Sequence[dict[str, Any]],
    *,
    settings: Settings,
    max_tokens: int,
) -> list[dict[str, Any]]:
    """Greedy completions of the probes with the engine's prompt format, timed."""
    from prefloop.prompting import after_lead, build_prompt, resolve_template, special_tokens

    template = resolve_template(settings.fim_template, special_tokens(tokenizer))
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
        completion = greedy_completion(model, tokenizer, prompt.text, max_tokens=max_tokens)
        text, seconds = completion.text, completion.seconds
        budget_spent = completion.budget_spent
        cuts = [text.find(s) for s in prompt.stop if s and s in text]
        if cuts:
            text = text[: min(cuts)]
            budget_spent = False
        # The probe's prefix holds the whitespace the prompt left out: judge what follows it.
        text = after_lead(text, prompt.lead) or ""
        result = probe_quality(probe, text, cut=budget_spent)
        result["seconds"] = seconds
        result["completion"] = text
        out.append(result)
    return out
