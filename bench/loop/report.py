"""The benchmark's report: a markdown section (tables per taste, the two-developer
trade-off, the verdict against the targets) and a PNG plot per taste."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.loop.metrics import mean_and_spread
from bench.loop.run import DeveloperResult, ServiceResult
from prefloop.trainer.probing import sign_test

BEGIN = "<!-- bench.loop: begin -->"
END = "<!-- bench.loop: end -->"

FIGURES = (
    ("acceptance", "acceptance", "{:.0%}"),
    ("retained_chars", "retained chars", "{:.0f}"),
    ("edit_distance", "edit distance", "{:.3f}"),
    ("taste_share", "with the taste", "{:.0%}"),
)

EDIT_DISTANCE_DROP = 0.30
ACCEPTANCE_FACTOR = 2.0
HUMANEVAL_ALPHA = 0.05
"""A HumanEval drop counts when a one-sided sign test over the changed problems gives
p below this."""


def _cell(values: Sequence[float | None], fmt: str) -> str:
    present = [v for v in values if v is not None and not math.isnan(v)]
    if not present:
        return "—"
    mean, spread = mean_and_spread(present)
    if len(present) == 1:
        return fmt.format(mean)
    return f"{fmt.format(mean)} ± {fmt.format(spread)}"


def _per_round(results: Sequence[ServiceResult], user: str, key: str) -> list[list[float]]:
    """``key`` of ``user`` for each round, one value per seed."""
    rounds: list[list[float]] = []
    for result in results:
        dev = next(d for d in result.developers if d.user == user)
        for index, figures in enumerate(dev.rounds):
            while len(rounds) <= index:
                rounds.append([])
            rounds[index].append(float(figures[key]))
    return rounds


def _series(results: Sequence[ServiceResult], attribute: str) -> list[list[float | None]]:
    """A per-round figure of every service (an attribute, or a method computing it), by
    round, one value per seed."""
    rounds: list[list[float | None]] = []
    for result in results:
        values = getattr(result, attribute)
        for index, value in enumerate(values() if callable(values) else values):
            while len(rounds) <= index:
                rounds.append([])
            rounds[index].append(value)
    return rounds


def _promoted(results: Sequence[ServiceResult], round_no: int) -> str:
    if round_no == 0:
        return "base"
    runs = [r.runs[round_no - 1] for r in results if len(r.runs) >= round_no]
    promoted = sum(1 for run in runs if run["status"] == "succeeded")
    return f"{promoted}/{len(runs)}"


def taste_table(results: Sequence[ServiceResult], user: str) -> list[str]:
    """Markdown rows: one per round, the figures as mean ± spread over seeds."""
    header = (
        "| round | promoted | "
        + " | ".join(label for _, label, _ in FIGURES)
        + " | HumanEval pass@1 | probe syntax-valid |"
    )
    lines = [header, "|" + "---|" * (len(FIGURES) + 4)]
    per_key = {key: _per_round(results, user, key) for key, _, _ in FIGURES}
    humaneval = _series(results, "humaneval")
    syntax = _series(results, "syntax_valid")
    for round_no in range(len(per_key["acceptance"])):
        cells = [str(round_no), _promoted(results, round_no)]
        cells += [_cell(per_key[key][round_no], fmt) for key, _, fmt in FIGURES]
        cells.append(_cell(humaneval[round_no] if round_no < len(humaneval) else [], "{:.0%}"))
        cells.append(_cell(syntax[round_no] if round_no < len(syntax) else [], "{:.2f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdict(results: Sequence[ServiceResult], user: str, humaneval_problems: int = 0) -> str:
    """The targets after the last round against round 0: every retrain promoted, edit
    distance down by 30 %, acceptance doubled (from zero: any acceptance), HumanEval pass@1
    and the probe syntax-valid rate not lower than before (means over seeds)."""
    distance = _per_round(results, user, "edit_distance")
    acceptance = _per_round(results, user, "acceptance")
    if len(distance) < 2:
        return "no training round"
    first_d, last_d = mean_and_spread(distance[0])[0], mean_and_spread(distance[-1])[0]
    first_a, last_a = mean_and_spread(acceptance[0])[0], mean_and_spread(acceptance[-1])[0]
    runs = [run for r in results for run in r.runs]
    promoted = sum(1 for run in runs if run["status"] == "succeeded")
    served = [
        next(
            (d.rounds[-1].get("version") for d in r.developers if d.user == user and d.rounds), None
        )
        for r in results
    ]
    learnt = sum(1 for v in served if v and v != "base")
    checks = [
        f"promoted {promoted}/{len(runs)} retrains; a promoted retrain served after the last "
        f"round in {learnt}/{len(results)} service(s)",
        f"edit distance {first_d:.3f} → {last_d:.3f} "
        f"({'met' if last_d <= first_d * (1 - EDIT_DISTANCE_DROP) else 'not met'}: −30 %)",
        f"acceptance {first_a:.0%} → {last_a:.0%} "
        f"({'met' if (last_a >= ACCEPTANCE_FACTOR * first_a and last_a > 0) else 'not met'}: ×2)",
    ]
    humaneval = [[v for v in r if v is not None] for r in _series(results, "humaneval")]
    if len(humaneval) >= 2 and humaneval[0] and humaneval[-1]:
        before, after = mean_and_spread(humaneval[0])[0], mean_and_spread(humaneval[-1])[0]
        checks.append(
            f"HumanEval pass@1 {before:.0%} → {after:.0%} "
            f"({humaneval_change(results, humaneval_problems)})"
        )
    syntax = [[v for v in r if v is not None] for r in _series(results, "syntax_valid")]
    if len(syntax) >= 2 and syntax[0] and syntax[-1]:
        before, after = mean_and_spread(syntax[0])[0], mean_and_spread(syntax[-1])[0]
        checks.append(f"probe syntax-valid {before:.2f} → {after:.2f}")
    return "; ".join(checks)


def humaneval_change(results: Sequence[ServiceResult], problems: int = 0) -> str:
    """Whether HumanEval pass@1 after the last round is lower than before beyond noise:
    over every service, the problems solved before and not after (lost) against those
    solved after and not before (gained), judged by a one-sided sign test at 5 %. Greedy
    completions of one version do not vary; what varies is which problems a version
    happens to solve, so only the problems that changed are evidence. Results that
    recorded only the share (of ``problems`` problems) are judged on the net change: a net
    loss of d problems is lower beyond noise at best with p = 0.5^d."""
    lost = gained = net = 0
    recorded = all(len(r.humaneval_solved) >= 2 for r in results)
    for result in results:
        if recorded:
            before, after = set(result.humaneval_solved[0]), set(result.humaneval_solved[-1])
            lost += len(before - after)
            gained += len(after - before)
        elif len(result.humaneval) >= 2 and problems:
            net += round((result.humaneval[0] - result.humaneval[-1]) * problems)
        else:
            return "problems not recorded"
    if recorded:
        p = sign_test(lost, gained)
        lower = "lower beyond noise" if p < HUMANEVAL_ALPHA else "not lower beyond noise"
        return f"{lost} problems lost, {gained} gained, sign test p {p:.2f}: {lower}"
    if net <= 0:
        return f"net {-net} problems gained: not lower"
    best = sign_test(net, 0)
    if best >= HUMANEVAL_ALPHA:
        return f"net {net} problems lost, p ≥ {best:.2f}: not lower beyond noise"
    return f"net {net} problems lost: lower unless as many changed the other way"


def run_lines(results: Sequence[ServiceResult]) -> list[str]:
    """One markdown bullet per retrain: outcome, data, steps and the gate's reasons."""
    lines = []
    for result in results:
        for round_no, run in enumerate(result.runs, 1):
            head = f"- seed {result.seed}, round {round_no}: "
            if run["status"] == "refused":
                lines.append(head + f"refused before training: {_refusal(run.get('error'))}")
                continue
            reasons = "; ".join(run.get("gate_reasons") or []) or run.get("error") or ""
            lines.append(
                head + f"{run['status']}"
                f" ({run.get('train_pairs')} train / {run.get('heldout_pairs')} held-out pairs,"
                f" {run.get('steps')} steps)" + (f": {reasons}" if reasons else "")
            )
    return lines


def _refusal(error: object) -> str:
    """The service's refusal message out of its JSON answer (or the text as it came)."""
    try:
        body = json.loads(str(error))
    except ValueError:
        return str(error)
    return str(body.get("error", error)) if isinstance(body, dict) else str(error)


def plot(results: Sequence[ServiceResult], user: str, title: str, path: Path) -> None:
    """Acceptance, edit distance, taste share and HumanEval pass@1 per round (mean, with
    the spread over seeds as error bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, list[list[float]]]] = [
        ("acceptance", _per_round(results, user, "acceptance")),
        ("edit distance", _per_round(results, user, "edit_distance")),
        ("with the taste", _per_round(results, user, "taste_share")),
        (
            "HumanEval pass@1",
            [[v for v in r if v is not None] for r in _series(results, "humaneval")],
        ),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8))
    for axis, (label, rounds) in zip(axes, panels, strict=True):
        xs = [i for i, values in enumerate(rounds) if values]
        stats = [mean_and_spread(rounds[i]) for i in xs]
        axis.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o")
        axis.set_title(label, fontsize=9)
        axis.set_xlabel("round")
        axis.set_xticks(range(len(rounds)))
        axis.set_ylim(0, 1.05)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def section(
    single: dict[str, list[ServiceResult]],
    pair: list[ServiceResult],
    *,
    plots_dir: Path,
    link_base: Path,
    setup: str,
    adapters: str = "shared",
    humaneval_problems: int = 0,
) -> str:
    """The markdown section for ``bench/RESULTS.md``; writes the plots to ``plots_dir``
    and links them relative to ``link_base``. ``adapters``: the services'
    ``PREFLOOP_TRAIN_ADAPTERS`` (``shared`` or ``per_user``); ``humaneval_problems``: how
    many HumanEval problems each round ran (for results that recorded only the share)."""
    lines = [
        BEGIN,
        "## Many tastes through the real loop (`bench/loop/`)",
        "",
        setup,
        "",
    ]
    for taste, results in single.items():
        user = results[0].developers[0].user
        png = plots_dir / f"{taste}.png"
        plot(results, user, f"{taste} ({len(results)} seed(s))", png)
        lines += [f"### {taste}", "", *taste_table(results, user), ""]
        lines += [f"Against the targets: {verdict(results, user, humaneval_problems)}.", ""]
        lines += ["Retrains:", "", *run_lines(results), ""]
        lines += [f"![{taste}]({_relative(png, link_base)})", ""]
    if pair:
        users = [d.user for d in pair[0].developers]
        tastes = [d.taste for d in pair[0].developers]
        lines += [
            f"### Two developers on one service: {tastes[0]} and {tastes[1]}",
            "",
            "One shared adapter learns from both; each one's held-out figures:"
            if adapters == "shared"
            else "Each has an adapter of their own (`PREFLOOP_TRAIN_ADAPTERS=per_user`), "
            "learnt from their own pairs; each one's held-out figures:",
            "",
        ]
        for user, taste in zip(users, tastes, strict=True):
            lines += [f"**{user}** ({taste}):", "", *taste_table(pair, user), ""]
            lines += [f"Against the targets: {verdict(pair, user, humaneval_problems)}.", ""]
        lines += ["Retrains:", "", *run_lines(pair), ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def write_section(results_md: Path, text: str) -> None:
    """Replace the benchmark's section of ``results_md`` (or append it)."""
    current = results_md.read_text() if results_md.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    results_md.write_text(updated)


def as_json(results: Sequence[ServiceResult]) -> list[dict[str, Any]]:
    """The raw results, JSON-ready."""
    return [
        {
            "seed": r.seed,
            "seconds": round(r.seconds, 1),
            "runs": r.runs,
            "humaneval": r.humaneval,
            "humaneval_solved": r.humaneval_solved,
            "developers": [d.__dict__ for d in r.developers],
        }
        for r in results
    ]


def from_json(rows: Sequence[dict[str, Any]]) -> list[ServiceResult]:
    """Results back from :func:`as_json` (a stored ``syntax_valid`` series is not read:
    :meth:`ServiceResult.syntax_valid` derives it from the runs)."""
    return [
        ServiceResult(
            seed=row["seed"],
            developers=[DeveloperResult(**d) for d in row["developers"]],
            runs=row["runs"],
            humaneval=row["humaneval"],
            humaneval_solved=row.get("humaneval_solved", []),
            seconds=row["seconds"],
        )
        for row in rows
    ]
