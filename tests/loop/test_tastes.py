"""Golden tests of the benchmark's tastes and corpus: what each taste accepts, how it fixes
a near miss, what the developer keeps."""

from __future__ import annotations

import pytest

from bench.loop.corpus import corpus
from bench.loop.tastes import (
    TASTES,
    Context,
    ReactionKind,
    react,
)
from tests.loop.base_style import plain_forms


def ctx(taste: str, wanted: str, path: str = "src/app/m.py") -> Context:
    return Context(taste, "example", path, "", "\n", wanted)


LIBRARY = "src/app/ports.py"
TEST = "tests/test_ports.py"

# (taste, path, line, satisfied, fixed)
GOLDEN = [
    ("annotations", LIBRARY, ": int, b: str) -> bool:", True, None),
    ("annotations", LIBRARY, ": dict[str, int], n: int) -> None:", True, None),
    ("annotations", LIBRARY, ", b) -> bool:", False, None),
    ("annotations", LIBRARY, ": int, b) -> bool:", False, None),
    ("annotations", LIBRARY, ": int):", False, ": int) -> int:"),
    ("docstring", LIBRARY, '    """Return the total."""', True, None),
    ("docstring", LIBRARY, '"""Returns the total."""', False, '"""Return the total."""'),
    ("docstring", LIBRARY, '"""matches the pattern"""', False, '"""Match the pattern."""'),
    ("docstring", LIBRARY, "'''Access the cache.'''", False, '"""Access the cache."""'),
    ("docstring", LIBRARY, '"""expresses a share"""', False, '"""Express a share."""'),
    ("docstring", LIBRARY, '"""applies the rate."""', False, '"""Apply the rate."""'),
    ("docstring", LIBRARY, '"""fixes the path"""', False, '"""Fix the path."""'),
    ("docstring", LIBRARY, "return total", False, None),
    ("fstrings", LIBRARY, ' f"{a} of {b}"', True, None),
    ("fstrings", LIBRARY, ' "%s of %s" % (a, b)', False, ' f"{a} of {b}"'),
    ("fstrings", LIBRARY, ' "{} items".format(n)', False, ' f"{n} items"'),
    ("fstrings", LIBRARY, ' "Hello"', False, None),
    ("pathlib", LIBRARY, ' Path(root) / "a"', True, None),
    ("pathlib", LIBRARY, ' os.path.join(root, "a", name)', False, ' Path(root) / "a" / name'),
    ("pathlib", LIBRARY, " os.path.exists(path)", False, " Path(path).exists()"),
    ("pathlib", LIBRARY, ' Path(os.path.join(home, "x"))', False, ' Path(Path(home) / "x")'),
    ("early_return", LIBRARY, " not items:", True, None),
    ("early_return", LIBRARY, " config is None:", True, None),
    ("early_return", LIBRARY, " items:", False, " not items:"),
    ("early_return", LIBRARY, " config is not None:", False, " config is None:"),
    ("early_return", LIBRARY, " len(items) > 0:", False, " not items:"),
    ("predicate_names", LIBRARY, " is_even(n: int) -> bool:", True, None),
    ("predicate_names", LIBRARY, " check_email(address):", False, " is_email(address):"),
    ("predicate_names", LIBRARY, " emailValid(a):", False, " is_email_valid(a):"),
    ("predicate_names", LIBRARY, " contains_digit(t):", False, " has_digit(t):"),
    ("signatures_by_file", LIBRARY, ": str) -> int:", True, None),
    ("signatures_by_file", TEST, ") -> None:", True, None),
    ("signatures_by_file", TEST, ": str) -> int:", False, ") -> None:"),
    ("signatures_by_file", TEST, ", expected):", False, ", expected) -> None:"),
    ("signatures_by_file", LIBRARY, ") -> None:", False, None),
]


@pytest.mark.parametrize(("taste", "path", "line", "satisfied", "fixed"), GOLDEN)
def test_satisfied_and_fix(
    taste: str, path: str, line: str, satisfied: bool, fixed: str | None
) -> None:
    context = ctx(taste, ": int) -> int:", path)
    assert TASTES[taste].satisfied(context, line) is satisfied
    if not satisfied:
        assert TASTES[taste].fix(context, line) == fixed


def test_reactions() -> None:
    wanted = ' f"{n} items"'
    context = ctx("fstrings", wanted)
    taste = TASTES["fstrings"]
    assert react(taste, context, ' f"{n} things"\n') == (react(taste, context, ' f"{n} things"\n'))
    accept = react(taste, context, ' f"{n} things"')
    assert (accept.kind, accept.kept) == (ReactionKind.ACCEPT, ' f"{n} things"')
    fixed = react(taste, context, ' "%s things" % n')
    assert (fixed.kind, fixed.kept) == (ReactionKind.EDIT, ' f"{n} things"')
    near = react(taste, context, ' "{n} items"')  # no fix applies, but close to the wanted
    assert (near.kind, near.kept) == (ReactionKind.EDIT, wanted)
    far = react(taste, context, " None")
    assert (far.kind, far.kept) == (ReactionKind.REWRITE, wanted)
    empty = react(taste, context, "")
    assert (empty.kind, empty.kept) == (ReactionKind.REWRITE, wanted)


def test_the_context_dependent_taste_differs_between_tests_and_library() -> None:
    taste = TASTES["signatures_by_file"]
    library, test = ctx("signatures_by_file", "", LIBRARY), ctx("signatures_by_file", "", TEST)
    assert not library.is_test and test.is_test
    assert taste.satisfied(library, ": str) -> int:") and not taste.satisfied(
        test, ": str) -> int:"
    )
    assert taste.satisfied(test, ") -> None:") and not taste.satisfied(library, ") -> None:")


EVERY_CONTEXT = [
    pytest.param(context, id=f"{taste}/{part}/{context.name}")
    for taste in sorted(TASTES)
    for part, contexts in (("train", corpus(taste).train), ("heldout", corpus(taste).heldout))
    for context in contexts
]


@pytest.mark.parametrize("context", EVERY_CONTEXT)
def test_every_wanted_line_has_the_taste(context: Context) -> None:
    taste = TASTES[context.taste]
    assert taste.satisfied(context, context.wanted)
    reaction = react(taste, context, context.wanted)
    assert (reaction.kind, reaction.kept) == (ReactionKind.ACCEPT, context.wanted)


@pytest.mark.parametrize("context", EVERY_CONTEXT)
def test_the_fix_turns_the_plain_style_into_the_wanted_line(context: Context) -> None:
    taste = TASTES[context.taste]
    for line in plain_forms(context):
        assert not taste.satisfied(context, line), line
        assert taste.fix(context, line) == context.wanted, line
        reaction = react(taste, context, line)
        assert (reaction.kind, reaction.kept) == (ReactionKind.EDIT, context.wanted), line
