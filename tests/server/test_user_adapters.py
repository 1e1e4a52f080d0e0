"""One adapter per user on the real service (``train_adapters = per_user``): a `prefloop
serve` process on the tiny model, real peft adapters in the registry, requests from
several users."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefloop import registry
from prefloop.server.engines import EngineError, create_engine
from prefloop.settings import Settings
from tests.adapters import make_lora_adapter
from tests.conftest import ServerProcess, start_server
from tests.server.test_swap import cli, stored_versions
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e]

PROMPT = {"prefix": "x = ", "language": "python", "max_tokens": 12}


@dataclass
class PerUser:
    server: ServerProcess
    settings: Settings
    adapters: dict[str, Path]

    def admin(self) -> httpx.Client:
        token = (self.server.home / "admin-token").read_text().strip()
        return httpx.Client(
            base_url=self.server.url, timeout=120, headers={"Authorization": f"Bearer {token}"}
        )

    def register(self, name: str, user: str | None = None) -> registry.Version:
        staged = registry.staging_dir(self.settings)
        shutil.copytree(self.adapters[name], staged, dirs_exist_ok=True)
        return registry.register(
            self.settings,
            staged,
            run_id=None,
            parent="base",
            base_model="tiny",
            metrics={},
            for_user=user,
        )

    def health(self) -> dict[str, Any]:
        with self.server.client() as client:
            body: dict[str, Any] = client.get("/healthz").json()
        return body

    def suggest(self, user: str) -> tuple[str, str, str]:
        """The served version, the first candidate's text ("" when none) and the suggestion id."""
        with self.server.client() as client:
            response = client.post("/v1/suggestions", json={**PROMPT, "user": user})
        assert response.status_code == 200, response.text
        body = response.json()
        text = body["candidates"][0]["text"] if body["candidates"] else ""
        return body["model_version"], text, body["suggestion_id"]

    def wait_users(self, wanted: dict[str, str]) -> None:
        wait_until(
            lambda: self.health()["user_versions"],
            lambda now: now == wanted,
            what=f"the users' versions {wanted} to be served",
            timeout=60,
            interval=0.1,
        )


@pytest.fixture(scope="module")
def per_user(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[PerUser]:
    work = tmp_path_factory.mktemp("user-adapters")
    adapters = {
        "a": make_lora_adapter(tiny_model_dir, work / "a", seed=1),
        "b": make_lora_adapter(tiny_model_dir, work / "b", seed=2),
        "c": make_lora_adapter(tiny_model_dir, work / "c", seed=3),
    }
    home = tmp_path_factory.mktemp("user-home")
    server = start_server(
        home,
        tiny_model_dir,
        extra_env={"PREFLOOP_SWAP_POLL_SECONDS": "0.5", "PREFLOOP_TRAIN_ADAPTERS": "per_user"},
    )
    settings = Settings(home=home, server_url=server.url, registry_keep=10)
    yield PerUser(server, settings, adapters)
    server.stop()


def test_each_user_is_served_their_own_version(per_user: PerUser) -> None:
    """ann gets her adapter, bob his (the same weights as the shared one), carol, who has
    none of her own, the shared version; each suggestion row records who served it."""
    base_version, base_text, _ = per_user.suggest("ann")
    assert base_version == "base"
    shared = per_user.register("a")
    ann = per_user.register("b", user="ann")
    bob = per_user.register("a", user="bob")
    with per_user.admin() as admin:
        response = admin.post("/admin/promote", json={"version": shared.id})
        assert response.status_code == 200, response.text
        response = admin.post("/admin/promote", json={"version": ann.id})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["model_version"] == shared.id
        assert (answer["user"], answer["user_version"], answer["error"]) == ("ann", ann.id, None)
    promoted = cli(per_user, "promote", bob.id)  # type: ignore[arg-type]
    assert promoted.returncode == 0, promoted.stderr
    assert f"promoted {bob.id} for user bob (was {shared.id})" in promoted.stdout
    per_user.wait_users({"ann": ann.id, "bob": bob.id})

    # Requests from the three users take turns; each runs on its user's adapter.
    answers = [(user, *per_user.suggest(user)) for user in ("ann", "carol", "bob", "ann", "carol")]
    expected = {"ann": ann.id, "bob": bob.id, "carol": shared.id}
    assert [(user, version) for user, version, _, _ in answers] == [
        (user, expected[user]) for user, _, _, _ in answers
    ]
    texts: dict[str, set[str]] = {}
    for user, _, text, _ in answers:
        texts.setdefault(user, set()).add(text)
    # Greedy decoding: one text per user; bob's weights are the shared ones, ann's not.
    assert all(len(t) == 1 for t in texts.values()), texts
    assert texts["bob"] == texts["carol"] != texts["ann"]
    assert base_text not in texts["carol"] | texts["ann"]
    rows = stored_versions(per_user.server.db_path, [sid for _, _, _, sid in answers])
    assert rows == {sid: version for _, version, _, sid in answers}

    health = per_user.health()
    assert health["model_version"] == shared.id
    assert health["user_versions"] == {"ann": ann.id, "bob": bob.id}
    assert health["user_versions_total"] == 2
    swap = health["swap"]
    assert swap["users_served"] == swap["users_promoted"] == 2 and swap["users_in_sync"]
    assert health["engine"]["user_adapters"] == 2
    with per_user.admin() as admin:
        models = admin.get("/admin/models").json()
    assert models["user_versions"] == {"ann": ann.id, "bob": bob.id}
    entries = {v["id"]: (v["user"], v["served"]) for v in models["versions"]}
    assert entries == {shared.id: (None, True), ann.id: ("ann", True), bob.id: ("bob", True)}

    # Rolling ann back leaves bob and the shared version alone.
    with per_user.admin() as admin:
        response = admin.post("/admin/rollback", json={"user": "ann"})
        assert response.status_code == 200, response.text
        assert response.json()["user_version"] == shared.id
        again = admin.post("/admin/rollback", json={"user": "ann"})
        assert again.status_code == 409 and "nothing to roll back for user" in again.text
    assert per_user.health()["user_versions"] == {"bob": bob.id}
    assert per_user.suggest("ann")[:2] == (shared.id, next(iter(texts["carol"])))
    assert per_user.suggest("bob")[0] == bob.id
    assert per_user.suggest("carol")[0] == shared.id


def test_polling_serves_a_users_promotion_made_without_notice(per_user: PerUser) -> None:
    before = per_user.health()["user_versions"]
    dave = per_user.register("c", user="dave")
    registry.promote(per_user.settings, dave.id, notify=False)
    per_user.wait_users({**before, "dave": dave.id})
    assert per_user.suggest("dave")[0] == dave.id
    registry.rollback(per_user.settings, notify=False, user="dave")
    per_user.wait_users(before)
    assert per_user.suggest("dave")[0] == per_user.health()["model_version"]


def test_per_user_needs_the_transformers_engine(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", engine="vllm", train_adapters="per_user")
    with pytest.raises(EngineError, match="per_user needs the transformers engine"):
        create_engine(settings)
