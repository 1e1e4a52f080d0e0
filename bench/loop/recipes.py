"""``python -m bench.loop.recipes``: which training recipe learns a taste from a few dozen
pairs, measured on the many-tastes benchmark's contexts without the service around it.

For every taste, the base model's greedy single-line suggestion at each training context is
reacted to by the simulated developer (:func:`bench.loop.tastes.react`); a near miss edited
after accepting and a rewrite after dismissing become a pair (the kept text chosen, the
suggestion rejected), as the pair builder makes them from those events; an accepted
suggestion makes none. Each recipe trains a LoRA adapter on those pairs with
:func:`prefloop.trainer.dpo.train_dpo`, and the adapter's greedy suggestions on the held-out
contexts are scored like the loop benchmark scores the served ones (share with the taste,
edit distance to what the developer keeps, acceptance), with the probe set's syntax-valid
rate beside them. The loop benchmark (``python -m bench.loop``) then checks the chosen
default end to end, through the real language server, service and gate.

Results: a section of ``bench/RESULTS.md`` and raw JSON in ``bench/results/recipes.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, shared_home
from bench.loop.corpus import TasteCorpus, corpus, training_order
from bench.loop.metrics import score
from bench.loop.tastes import TASTES, Context, ReactionKind, react

BEGIN = "<!-- bench.loop.recipes: begin -->"
END = "<!-- bench.loop.recipes: end -->"

RECIPES: dict[str, dict[str, Any]] = {
    # The settings the loop shipped with before it adapted to the data.
    "fixed-1e-4": {"learning_rate": 1e-4, "epochs": 2, "min_steps": 0},
    # The demo's former hand-picked recipe: a higher rate and four passes.
    "fixed-1e-3": {"learning_rate": 1e-3, "epochs": 4, "min_steps": 0},
    # The automatic rate and the step floor, DPO alone.
    "adaptive-dpo": {"sft_weight": 0.0},
    # The defaults: the same plus the supervised loss on the chosen text.
    "adaptive-dpo+sft": {},
    # Half the small-data rate, with and without the supervised loss.
    "adaptive-half-rate+sft": {"auto_learning_rate": 5e-4},
    "adaptive-half-rate-dpo": {"auto_learning_rate": 5e-4, "sft_weight": 0.0},
}
"""Candidate recipes, as overrides of the training defaults (``reference`` is ``base``
for all: a fresh adapter on all the pairs; DPO alone unless ``sft_weight`` is set)."""


@dataclass
class RecipeResult:
    """One recipe on one taste: the data, the training and the held-out figures."""

    taste: str
    recipe: str
    pairs: int
    steps: int
    learning_rate: float
    train_seconds: float
    final_loss: float | None
    taste_share: float
    edit_distance: float
    acceptance: float
    syntax_valid: float | None
    degenerate: int | None = None


DEMO = "demo"
"""The demo's own taste and functions (``prefloop.trainer.simulate``): annotated signatures,
32 training functions, 8 held out."""


def taste_corpus(name: str) -> TasteCorpus:
    """The contexts of a taste of the loop benchmark, or of the demo (:data:`DEMO`)."""
    if name != DEMO:
        return corpus(name)
    from prefloop.trainer.simulate import HELDOUT_TASKS, TRAINING_TASKS

    def contexts(tasks: Sequence[Any]) -> tuple[Context, ...]:
        return tuple(
            Context("annotations", t.name, "util.py", t.prefix, "", t.wanted) for t in tasks
        )

    return TasteCorpus(DEMO, contexts(TRAINING_TASKS), contexts(HELDOUT_TASKS))


def _prompt(tokenizer: Any, context: Context) -> Any:
    """The service's prompt at ``context`` (its default prompt settings)."""
    from prefloop.prompting import build_prompt, resolve_template, special_tokens
    from prefloop.settings import Settings

    settings = Settings()
    template = resolve_template(settings.fim_template, special_tokens(tokenizer))
    return build_prompt(
        context.prefix,
        context.suffix,
        template=template,
        tokenizer=tokenizer,
        max_prompt_tokens=settings.max_prompt_tokens,
        language="python",
        path=context.path,
    )


def _suggest(
    model: Any, tokenizer: Any, contexts: Sequence[Context], *, max_tokens: int
) -> list[str]:
    """The greedy single-line suggestion at each context, in the service's prompt format
    and post-processing."""
    from prefloop.trainer.probing import greedy_completion
    from server.postprocess import postprocess_candidates

    out = []
    for context in contexts:
        prompt = _prompt(tokenizer, context)
        text = greedy_completion(model, tokenizer, prompt.text, max_tokens=max_tokens).text
        cuts = [text.find(s) for s in prompt.stop if s and s in text]
        if cuts:
            text = text[: min(cuts)]
        kept = postprocess_candidates(
            [text], prefix=prompt.prefix, suffix=prompt.suffix, mode="single_line", lead=prompt.lead
        )
        out.append((kept or [""])[0])
    return out


def feedback_pairs(
    tokenizer: Any, contexts: Sequence[Context], suggestions: Sequence[str]
) -> list[dict[str, str]]:
    """The pairs the developer's reactions to ``suggestions`` make: kept text chosen over
    the suggestion for near misses and rewrites; nothing for accepted suggestions."""
    pairs = []
    for context, suggestion in zip(contexts, suggestions, strict=True):
        reaction = react(TASTES[context.taste], context, suggestion)
        if reaction.kind is ReactionKind.ACCEPT or not suggestion.strip():
            continue
        if reaction.kept.strip() == suggestion.strip():
            continue
        prompt = _prompt(tokenizer, context)
        # As the pair builder stores them: both texts continue the prompt.
        pairs.append(
            {
                "prompt": prompt.text,
                "chosen": prompt.lead + reaction.kept,
                "rejected": prompt.lead + suggestion,
            }
        )
    return pairs


def _load(model_dir: str, adapter: Path | None = None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.eval()
    return model, tokenizer


def _probe_counts(model: Any, tokenizer: Any) -> tuple[float, int]:
    from prefloop.settings import Settings
    from prefloop.train_config import TrainConfig
    from prefloop.trainer.probing import load_probes, run_probes

    config = TrainConfig()
    probes = load_probes(config.probes)["probes"]
    results = run_probes(
        model, tokenizer, probes, settings=Settings(), max_tokens=config.probe_max_tokens
    )
    parsed = [r for r in results if "syntax_valid" in r]
    valid = sum(bool(r["syntax_valid"]) for r in parsed) / len(parsed)
    return valid, sum(bool(r["degenerate"]) for r in results)


@dataclass(frozen=True)
class _Measured:
    taste_share: float
    edit_distance: float
    acceptance: float
    syntax_valid: float | None
    degenerate: int | None


def _measure(
    model: Any,
    tokenizer: Any,
    heldout: Sequence[Context],
    *,
    max_tokens: int,
    probes: bool,
) -> _Measured:
    """The held-out figures of ``model`` and, with ``probes``, the probe set's counts."""
    suggestions = _suggest(model, tokenizer, heldout, max_tokens=max_tokens)
    scored = [score(TASTES[c.taste], c, s) for c, s in zip(heldout, suggestions, strict=True)]
    n = len(scored)
    accepted = sum(s.reaction in ("accept", "edit_after_accept") for s in scored)
    valid, degenerate = _probe_counts(model, tokenizer) if probes else (None, None)
    return _Measured(
        sum(s.satisfied for s in scored) / n,
        statistics.fmean(s.distance for s in scored),
        accepted / n,
        valid,
        degenerate,
    )


def run_taste(
    model_dir: str,
    taste: str,
    recipes: Sequence[str],
    *,
    contexts: int | None,
    seed: int,
    max_tokens: int,
    probes: bool,
    work: Path,
    report: Any = print,
) -> list[RecipeResult]:
    """Every recipe in ``recipes`` on ``taste``, plus the base model as ``base``."""
    from prefloop.train_config import load_config
    from prefloop.trainer.dpo import train_dpo

    contexts_of = taste_corpus(taste)
    train = training_order(contexts_of.train, seed)[:contexts]
    heldout = list(contexts_of.heldout)
    model, tokenizer = _load(model_dir)
    pairs = feedback_pairs(
        tokenizer, train, _suggest(model, tokenizer, train, max_tokens=max_tokens)
    )
    base = _measure(model, tokenizer, heldout, max_tokens=max_tokens, probes=probes)
    results = [RecipeResult(taste, "base", len(pairs), 0, 0.0, 0.0, None, **asdict(base))]
    report(f"{taste}: {len(train)} contexts, {len(pairs)} pairs; base: {results[0]}")
    del model
    for name in recipes:
        config = load_config(env={}, overrides={**RECIPES[name], "seed": seed, "device": "cpu"})
        out = work / f"{taste}-{name}-{seed}"
        trained = train_dpo(model_dir, pairs, out, config) if pairs else None
        model, tokenizer = _load(model_dir, trained.adapter_dir if trained else None)
        measured = _measure(model, tokenizer, heldout, max_tokens=max_tokens, probes=probes)
        results.append(
            RecipeResult(
                taste,
                name,
                len(pairs),
                trained.steps if trained else 0,
                config.plan(len(pairs)).learning_rate,
                trained.seconds if trained else 0.0,
                trained.final_loss if trained else None,
                **asdict(measured),
            )
        )
        report(f"{taste}: {results[-1]}")
        del model
    return results


def section(results: Sequence[RecipeResult], setup: str) -> str:
    """The Markdown section: per taste, one row per recipe."""
    lines = [
        BEGIN,
        "## Training recipes on few pairs (`bench/loop/recipes.py`)",
        "",
        setup,
        "",
        "| taste | recipe | pairs | steps | rate | train s | with the taste | edit distance "
        "| acceptance | probe syntax-valid | probes empty or repetitive |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        syntax = "–" if r.syntax_valid is None else f"{r.syntax_valid:.2f}"
        degenerate = "–" if r.degenerate is None else str(r.degenerate)
        rate = f"{r.learning_rate:.0e}" if r.steps else "–"
        lines.append(
            f"| {r.taste} | {r.recipe} | {r.pairs} | {r.steps} | "
            f"{rate} | {r.train_seconds:.0f} | {r.taste_share:.0%} | "
            f"{r.edit_distance:.3f} | {r.acceptance:.0%} | {syntax} | {degenerate} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace the section between the markers in ``path`` (or append it)."""
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        new = head + text + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop.recipes", description=__doc__)
    parser.add_argument(
        "--tastes", default=",".join(TASTES), help=f"tastes of the loop benchmark, or {DEMO!r}"
    )
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--contexts", type=int, help="training contexts per taste (all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--no-probes", action="store_true", help="skip the probe set")
    parser.add_argument("--model", help="model directory (default: the embedded model)")
    parser.add_argument(
        "--from-json",
        action="append",
        default=[],
        help="earlier raw results to report along with this run's (repeatable)",
    )
    parser.add_argument("--results-md", default=str(REPO / "bench" / "RESULTS.md"))
    parser.add_argument("--json", default=str(RESULTS / "recipes.json"))
    args = parser.parse_args(argv)
    tastes = [t for t in args.tastes.split(",") if t]
    recipes = [r for r in args.recipes.split(",") if r]
    unknown = [t for t in tastes if t not in [*TASTES, DEMO]]
    unknown += [r for r in recipes if r not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown tastes or recipes: {unknown}")
    if args.model:
        model_dir = args.model
    else:
        from prefloop.models import prepare_embedded
        from prefloop.settings import Settings

        model_dir = str(prepare_embedded(Settings(home=shared_home())))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    setup = (
        f"{Path(model_dir).name} on this machine's CPU (2 cores, shared); seed {args.seed}; "
        f"{args.max_tokens} tokens per single-line suggestion; pairs from the simulated "
        f"developer's reactions to the base model's suggestions at "
        f"{args.contexts or 'all'} training contexts per taste; figures on the taste's "
        f"held-out contexts. Recipes: "
        + "; ".join(f"`{name}` {RECIPES[name] or 'the defaults'}" for name in recipes)
        + f". Written {stamp}."
    )
    results = [
        RecipeResult(**row)
        for earlier in args.from_json
        for row in json.loads(Path(earlier).read_text())
    ]
    json_path = Path(args.json)
    with tempfile.TemporaryDirectory(prefix="prefloop-recipes-") as work:
        for taste in tastes:
            results += run_taste(
                model_dir,
                taste,
                recipes,
                contexts=args.contexts,
                seed=args.seed,
                max_tokens=args.max_tokens,
                probes=not args.no_probes,
                work=Path(work),
            )
            write_section(Path(args.results_md), section(results, setup))
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps([asdict(r) for r in results], indent=1))
    if not tastes:
        write_section(Path(args.results_md), section(results, setup))
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
