"""The registry with versions of single users (``for_user``): each user a scope of their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefloop import registry
from prefloop.registry import BASE, SHARED, NotPromotable
from prefloop.settings import Settings
from tests.adapters import make_lora_adapter
from tests.trainer.test_registry import add, run_cli


@pytest.fixture(scope="module")
def adapter_template(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    return make_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("lora") / "adapter")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", registry_keep=10, server_url="http://127.0.0.1:9")


def served(settings: Settings, user: str) -> str:
    version = registry.served_to(settings, user)
    return version.id if version is not None else BASE


def test_a_user_is_served_their_own_version_else_the_shared_one(
    settings: Settings, adapter_template: Path
) -> None:
    shared = add(settings, adapter_template)  # v1
    ann1 = add(settings, adapter_template, for_user="ann")  # v2
    bob1 = add(settings, adapter_template, for_user="bob")  # v3
    assert (shared.for_user, ann1.for_user, bob1.for_user) == (None, "ann", "bob")
    assert served(settings, "ann") == BASE  # nothing promoted yet
    registry.promote(settings, "v2", notify=False)
    assert registry.current(settings) is None  # the shared scope still serves the base model
    assert (served(settings, "ann"), served(settings, "bob")) == ("v2", BASE)
    registry.promote(settings, "v1", notify=False)
    registry.promote(settings, "v3", notify=False)
    # Promotions in one scope retire nothing in another.
    statuses = {v.id: v.status for v in registry.list_versions(settings)}
    assert statuses == {"v1": "promoted", "v2": "promoted", "v3": "promoted"}
    assert [served(settings, u) for u in ("ann", "bob", "carol")] == ["v2", "v3", "v1"]
    assert {u: v.id for u, v in registry.user_versions(settings).items()} == {
        "ann": "v2",
        "bob": "v3",
    }
    ann2 = add(settings, adapter_template, for_user="ann")  # v4
    registry.promote(settings, ann2.id, notify=False)
    assert registry.get(settings, "v2").status == "retired"
    assert registry.get(settings, "v3").status == "promoted"
    assert registry.current(settings) == registry.get(settings, "v1")

    # A user's rollback moves back in their history only.
    assert registry.rollback_target(settings, "ann") == "v2"
    assert registry.rollback(settings, notify=False, user="ann") == "v2"
    assert [served(settings, u) for u in ("ann", "bob", "carol")] == ["v2", "v3", "v1"]
    assert registry.rollback(settings, notify=False, user="ann") == SHARED
    assert [served(settings, u) for u in ("ann", "bob", "carol")] == ["v1", "v3", "v1"]
    with pytest.raises(NotPromotable, match="nothing to roll back for user 'ann'"):
        registry.rollback(settings, notify=False, user="ann")
    # The shared rollback leaves the users' own versions alone.
    assert registry.rollback(settings, notify=False) == BASE
    assert [served(settings, u) for u in ("ann", "bob", "carol")] == [BASE, "v3", BASE]
    history = [
        (p.action, p.for_user, p.from_version, p.to_version) for p in registry.history(settings)
    ]
    assert history == [
        ("promote", "ann", SHARED, "v2"),
        ("promote", None, BASE, "v1"),
        ("promote", "bob", SHARED, "v3"),
        ("promote", "ann", "v2", "v4"),
        ("rollback", "ann", "v4", "v2"),
        ("rollback", "ann", "v2", SHARED),
        ("rollback", None, "v1", BASE),
    ]


def test_prune_keeps_what_each_user_is_served(tmp_path: Path, adapter_template: Path) -> None:
    """registry_keep=2: the two newest keep their files, and so do each scope's served
    version and its rollback target."""
    settings = Settings(home=tmp_path / "home", registry_keep=2, server_url="http://127.0.0.1:9")
    add(settings, adapter_template, for_user="ann")  # v1
    add(settings, adapter_template, for_user="ann")  # v2
    registry.promote(settings, "v1", notify=False)
    registry.promote(settings, "v2", notify=False)  # ann's rollback target: v1
    add(settings, adapter_template, for_user="bob")  # v3
    registry.promote(settings, "v3", notify=False)
    for _ in range(3):
        add(settings, adapter_template)  # v4..v6
    present = sorted(p.name for p in settings.adapters_dir.iterdir() if p.name.startswith("v"))
    assert present == ["v1", "v2", "v3", "v5", "v6"]


def test_cli_lists_users_and_rolls_back_one(settings: Settings, adapter_template: Path) -> None:
    add(settings, adapter_template)
    add(settings, adapter_template, for_user="ann")
    registry.promote(settings, "v1", notify=False)
    promoted = run_cli(settings.home, "promote", "v2")
    assert promoted.returncode == 0, promoted.stderr
    assert "promoted v2 for user ann (was v1)" in promoted.stdout
    listing = run_cli(settings.home, "models").stdout.splitlines()
    assert listing[0].split() == ["VERSION", "USER", "STATUS", "PARENT", "CREATED", "METRICS"]
    assert listing[1].startswith("*") and listing[1].split()[1:4] == ["v2", "ann", "promoted"]
    assert listing[2].startswith("*") and listing[2].split()[1:4] == ["v1", "(shared)", "promoted"]
    as_json = json.loads(run_cli(settings.home, "models", "--format", "json").stdout)
    assert as_json["current"] == "v1" and as_json["users"] == {"ann": "v2"}
    assert [(v["id"], v["user"], v["current"]) for v in as_json["versions"]] == [
        ("v2", "ann", True),
        ("v1", None, True),
    ]
    back = run_cli(settings.home, "rollback", "--user", "ann")
    assert back.returncode == 0, back.stderr
    assert "rolled back user ann from v2 to shared" in back.stdout
    assert registry.current(settings) == registry.get(settings, "v1")
    again = run_cli(settings.home, "rollback", "--user", "ann")
    assert again.returncode == 1 and "nothing to roll back for user 'ann'" in again.stderr
