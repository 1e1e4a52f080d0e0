"""The transformers engine holding the users' adapters beside the shared one (tiny model)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from prefloop.server.engines import BASE_VERSION, EngineError, GenerationParams
from prefloop.server.engines.hf import TransformersEngine
from tests.server.test_engines import PROMPT, make_adapter

pytestmark = pytest.mark.asyncio(loop_scope="module")

PARAMS = GenerationParams(max_tokens=10)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(tiny_model_dir: Path) -> AsyncIterator[TransformersEngine]:
    # Keeping one adapter at most: the ones in use must stay loaded all the same.
    engine = TransformersEngine(str(tiny_model_dir), keep_adapters=1)
    await engine.start()
    yield engine
    await engine.close()


async def text(engine: TransformersEngine, user: str | None) -> tuple[str, str]:
    [first, *_] = await engine.generate(PROMPT, PARAMS, user)
    return first.version, first.text


async def test_each_request_runs_on_its_users_adapter(
    engine: TransformersEngine, tiny_model_dir: Path, tmp_path: Path
) -> None:
    one = await asyncio.to_thread(make_adapter, tiny_model_dir, tmp_path / "one", 1)
    two = await asyncio.to_thread(make_adapter, tiny_model_dir, tmp_path / "two", 2)
    _, base_text = await text(engine, "carol")
    await engine.load_adapter(one, "v1")  # shared
    await engine.load_user_adapter("ann", two, "v2")
    await engine.load_user_adapter("bob", one, "v3")  # the shared weights, another name
    assert engine.version == "v1" and engine.user_versions == {"ann": "v2", "bob": "v3"}
    assert engine.version_for("ann") == "v2" and engine.version_for("carol") == "v1"
    # Users taking turns: each generation on its user's adapter, greedy and repeatable.
    answers = [await text(engine, u) for u in ("ann", "carol", "bob", None, "ann", "bob")]
    assert [v for v, _ in answers] == ["v2", "v1", "v3", "v1", "v2", "v3"]
    ann, carol, bob, nobody, ann_again, bob_again = (t for _, t in answers)
    assert ann == ann_again and bob == bob_again
    assert bob == carol == nobody != ann and base_text not in (ann, carol)
    health = await engine.health()
    assert sorted(health["adapters"]) == ["v1", "v2", "v3"] and health["user_adapters"] == 2

    # An adapter that cannot load leaves the user on what they had.
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(EngineError):
        await engine.load_user_adapter("ann", broken, "v9")
    assert await text(engine, "ann") == ("v2", ann)

    # ann back on the shared version: her adapter, no longer in use, is dropped.
    await engine.drop_user_adapter("ann")
    assert await text(engine, "ann") == ("v1", carol)
    assert sorted((await engine.health())["adapters"]) == ["v1", "v3"]
    # The shared version back to the base model; bob keeps his own.
    await engine.use_base()
    assert await text(engine, "carol") == (BASE_VERSION, base_text)
    assert await text(engine, "bob") == ("v3", bob)
    # Nobody served an adapter: the plain model again.
    await engine.drop_user_adapter("bob")
    assert (await engine.health())["adapters"] == []
    assert await text(engine, "bob") == (BASE_VERSION, base_text)
