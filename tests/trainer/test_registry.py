"""The model registry on a real SQLite database with real peft adapters."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefloop import admin, registry
from prefloop.registry import BASE, NotPromotable, RegistryError, UnknownVersion
from prefloop.settings import Settings
from prefloop.store import connect
from tests.adapters import make_lora_adapter

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def adapter_template(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    return make_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("lora") / "adapter")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", registry_keep=3, server_url="http://127.0.0.1:9")


def stage(settings: Settings, template: Path) -> Path:
    staged = registry.staging_dir(settings)
    shutil.copytree(template, staged, dirs_exist_ok=True)
    return staged


def add(settings: Settings, template: Path, parent: str = BASE, **kw: object) -> registry.Version:
    return registry.register(
        settings,
        stage(settings, template),
        run_id=kw.pop("run_id", None),  # type: ignore[arg-type]
        parent=parent,
        base_model="tiny",
        metrics=kw.pop("metrics", {"win_rate": 0.6}),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def snapshot(settings: Settings) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    conn = connect(settings.db_path)
    try:
        versions = conn.execute("SELECT * FROM model_versions ORDER BY id").fetchall()
        history = conn.execute("SELECT * FROM promotions ORDER BY id").fetchall()
    finally:
        conn.close()
    return versions, history


def test_register_moves_the_adapter_into_place(settings: Settings, adapter_template: Path) -> None:
    staged = stage(settings, adapter_template)
    version = registry.register(
        settings, staged, run_id="r1", parent=BASE, base_model="tiny", metrics={"loss": 0.5}
    )
    assert version.id == "v1"
    assert version.status == "candidate"
    assert version.adapter_path == str((settings.adapters_dir / "v1").resolve())
    assert not staged.exists()
    assert (Path(version.adapter_path) / "adapter_config.json").is_file()
    assert registry.get(settings, "v1") == version
    assert version.metrics == {"loss": 0.5}
    assert registry.current(settings) is None
    second = add(settings, adapter_template, parent="v1")
    assert second.id == "v2"
    assert [v.id for v in registry.list_versions(settings)] == ["v2", "v1"]


@pytest.mark.parametrize(
    "damage",
    ["no-config", "not-lora", "no-weights", "truncated-weights", "bad-json"],
)
def test_register_refuses_what_is_not_an_adapter(
    settings: Settings, adapter_template: Path, damage: str
) -> None:
    staged = stage(settings, adapter_template)
    weights = staged / "adapter_model.safetensors"
    config = staged / "adapter_config.json"
    if damage == "no-config":
        config.unlink()
    elif damage == "not-lora":
        data = json.loads(config.read_text())
        data["peft_type"] = "PROMPT_TUNING"
        config.write_text(json.dumps(data))
    elif damage == "no-weights":
        weights.unlink()
    elif damage == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif damage == "bad-json":
        config.write_text("{not json")
    with pytest.raises(RegistryError):
        registry.register(settings, staged, run_id=None, parent=BASE, base_model="t", metrics={})
    assert staged.exists()
    assert registry.list_versions(settings) == []
    assert not (settings.adapters_dir / "v1").exists()


def test_register_copies_an_adapter_saved_outside_the_staging_area(
    settings: Settings, adapter_template: Path
) -> None:
    version = registry.register(
        settings, adapter_template, run_id=None, parent=BASE, base_model="tiny", metrics={}
    )
    assert (adapter_template / "adapter_config.json").is_file()
    assert (Path(version.adapter_path) / "adapter_model.safetensors").read_bytes() == (
        adapter_template / "adapter_model.safetensors"
    ).read_bytes()
    assert not any((settings.adapters_dir / registry.STAGING).iterdir())


def test_register_refuses_an_unknown_parent(settings: Settings, adapter_template: Path) -> None:
    with pytest.raises(UnknownVersion):
        add(settings, adapter_template, parent="v7")
    with pytest.raises(UnknownVersion):
        registry.register(
            settings, adapter_template, run_id=None, parent="v7", base_model="t", metrics={}
        )
    assert registry.list_versions(settings) == []
    assert len(list((settings.adapters_dir / registry.STAGING).iterdir())) == 1  # add()'s own


def test_crash_between_rename_and_commit_leaves_no_version(
    settings: Settings, adapter_template: Path
) -> None:
    """A process killed right after the rename: no row, an orphan directory that the
    next id skips and prune removes."""
    add(settings, adapter_template)
    staged = stage(settings, adapter_template)
    script = f"""
import os, sys
from pathlib import Path
from prefloop.settings import Settings
from prefloop import registry
real_rename = os.rename
def rename_then_die(src, dst):
    real_rename(src, dst)
    os._exit(17)
os.rename = rename_then_die
registry.register(Settings(home={str(settings.home)!r}), Path({str(staged)!r}),
                  run_id="crash", parent="base", base_model="tiny", metrics={{}})
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert proc.returncode == 17
    assert (settings.adapters_dir / "v2").is_dir()  # renamed, never committed
    assert [v.id for v in registry.list_versions(settings)] == ["v1"]
    after = add(settings, adapter_template)
    assert after.id == "v3"
    with pytest.raises(UnknownVersion):
        registry.promote(settings, "v2", notify=False)
    # The orphan is kept while it may still be a register in progress, removed later.
    registry.prune(settings)
    assert (settings.adapters_dir / "v2").is_dir()
    old = time.time() - registry.ORPHAN_GRACE_SECONDS - 5
    os.utime(settings.adapters_dir / "v2", (old, old))
    registry.prune(settings)
    assert not (settings.adapters_dir / "v2").exists()
    assert (settings.adapters_dir / "v1").is_dir()
    assert (settings.adapters_dir / "v3").is_dir()


def test_promote_and_history(settings: Settings, adapter_template: Path) -> None:
    add(settings, adapter_template)
    add(settings, adapter_template)
    v1 = registry.promote(settings, "v1", notify=False)
    assert v1.status == "promoted" and v1.promoted_at
    assert registry.current(settings) == v1
    registry.promote(settings, "v2", notify=False, reason="gate passed")
    assert registry.current(settings).id == "v2"  # type: ignore[union-attr]
    assert registry.get(settings, "v1").status == "retired"
    events = [(e.action, e.from_version, e.to_version) for e in registry.history(settings)]
    assert events == [("promote", "base", "v1"), ("promote", "v1", "v2")]
    assert registry.history(settings)[-1].reason == "gate passed"
    assert registry.history(settings)[-1].user == settings.user


def test_failed_promotions_change_nothing(settings: Settings, adapter_template: Path) -> None:
    add(settings, adapter_template)
    add(settings, adapter_template)
    add(settings, adapter_template)
    registry.promote(settings, "v1", notify=False)
    registry.reject(settings, "v2", "lost to its parent")
    shutil.rmtree(settings.adapters_dir / "v3")
    before = snapshot(settings)
    with pytest.raises(UnknownVersion):
        registry.promote(settings, "v9", notify=False)
    with pytest.raises(NotPromotable, match="rejected"):
        registry.promote(settings, "v2", notify=False)
    with pytest.raises(NotPromotable, match="cannot be served"):
        registry.promote(settings, "v3", notify=False)
    with pytest.raises(NotPromotable, match="already"):
        registry.promote(settings, "v1", notify=False)
    with pytest.raises(NotPromotable):
        registry.promote(settings, BASE, notify=False)
    with pytest.raises(NotPromotable, match="being served"):
        registry.reject(settings, "v1", "oops")
    assert snapshot(settings) == before
    assert registry.get(settings, "v2").metrics["rejected_reason"] == "lost to its parent"


def test_a_promotion_failing_midway_is_rolled_back(
    settings: Settings, adapter_template: Path
) -> None:
    """The history insert fails after the status updates ran: none of it stays."""
    add(settings, adapter_template)
    add(settings, adapter_template)
    registry.promote(settings, "v1", notify=False)
    before = snapshot(settings)
    conn = connect(settings.db_path)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON promotions "
        "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    conn.commit()
    with pytest.raises(sqlite3.IntegrityError, match="disk trouble"):
        registry.promote(settings, "v2", notify=False)
    with pytest.raises(sqlite3.IntegrityError):
        registry.rollback(settings, notify=False)
    conn.execute("DROP TRIGGER refuse")
    conn.commit()
    conn.close()
    assert snapshot(settings) == before
    assert registry.current(settings).id == "v1"  # type: ignore[union-attr]


def test_rollback_chain(settings: Settings, adapter_template: Path) -> None:
    settings = settings.model_copy(update={"registry_keep": 10})
    for _ in range(4):
        add(settings, adapter_template)
    with pytest.raises(NotPromotable, match="nothing to roll back"):
        registry.rollback(settings, notify=False)
    for version in ("v1", "v2", "v3"):
        registry.promote(settings, version, notify=False)
    assert registry.rollback_target(settings) == "v2"
    assert registry.rollback(settings, notify=False) == "v2"
    assert registry.get(settings, "v3").status == "retired"
    assert registry.current(settings).id == "v2"  # type: ignore[union-attr]
    # A promotion after a rollback stacks on the version it replaced.
    registry.promote(settings, "v4", notify=False)
    assert registry.rollback(settings, notify=False) == "v2"
    # A version rejected meanwhile is skipped on the way back.
    registry.reject(settings, "v1", "found a regression")
    assert registry.rollback(settings, notify=False) == BASE
    assert registry.current(settings) is None
    with pytest.raises(NotPromotable):
        registry.rollback(settings, notify=False)
    events = [(e.action, e.from_version, e.to_version) for e in registry.history(settings)]
    assert events == [
        ("promote", "base", "v1"),
        ("promote", "v1", "v2"),
        ("promote", "v2", "v3"),
        ("rollback", "v3", "v2"),
        ("promote", "v2", "v4"),
        ("rollback", "v4", "v2"),
        ("rollback", "v2", "base"),
    ]
    statuses = {v.id: v.status for v in registry.list_versions(settings)}
    assert statuses == {"v1": "rejected", "v2": "retired", "v3": "retired", "v4": "retired"}


def test_prune_keeps_the_newest_and_the_rollback_chain(
    settings: Settings, adapter_template: Path
) -> None:
    """registry_keep=3: the three newest keep their files, plus the served version and
    the one a rollback would return to."""
    for _ in range(2):
        add(settings, adapter_template)
    registry.promote(settings, "v1", notify=False)
    registry.promote(settings, "v2", notify=False)  # previous: v1
    for _ in range(4):
        add(settings, adapter_template)  # v3..v6
    # Registering v6 pruned v3: v4..v6 are the newest, v2 is served, v1 its rollback target.
    assert registry.prune(settings) == []
    present = sorted(p.name for p in settings.adapters_dir.iterdir() if p.name.startswith("v"))
    assert present == ["v1", "v2", "v4", "v5", "v6"]
    v3 = registry.get(settings, "v3")
    assert v3.pruned_at is not None and not v3.files_present
    with pytest.raises(NotPromotable, match="pruned"):
        registry.promote(settings, "v3", notify=False)
    registry.promote(settings, "v6", notify=False)  # previous: v2; v1 is now prunable
    present = sorted(p.name for p in settings.adapters_dir.iterdir() if p.name.startswith("v"))
    assert present == ["v2", "v4", "v5", "v6"]
    # Rows stay for audit; the rollback skips the pruned v1 and ends at base.
    assert len(registry.list_versions(settings)) == 6
    assert registry.rollback(settings, notify=False) == "v2"
    assert registry.rollback(settings, notify=False) == BASE
    assert not list((settings.adapters_dir / registry.TRASH).iterdir())


def test_stale_staging_dirs_are_cleaned(settings: Settings) -> None:
    fresh = registry.staging_dir(settings)
    stale = registry.staging_dir(settings)
    assert fresh != stale and not any(fresh.iterdir())
    old = time.time() - registry.STAGING_MAX_AGE_SECONDS - 5
    os.utime(stale, (old, old))
    registry.prune(settings)
    assert fresh.is_dir() and not stale.exists()


def test_promote_tells_the_user_when_no_service_runs(
    settings: Settings, adapter_template: Path
) -> None:
    add(settings, adapter_template)
    registry.promote(settings, "v1", notify=True)  # best effort: nothing listens on :9
    result = registry.notify_service(settings, timeout=2)
    assert not result.ok and "no service answered" in result.message


def test_admin_token_is_generated_once_with_private_mode(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    token = admin.admin_token(settings)
    path = admin.token_path(settings)
    assert len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert admin.admin_token(Settings(home=tmp_path / "home")) == token
    assert admin.admin_token(Settings(home=tmp_path / "home", admin_token="given")) == "given"
    assert admin.token_matches(token, token)
    assert not admin.token_matches(token[:-1], token)
    assert not admin.token_matches(None, token)
    assert not admin.token_matches("", token)
    assert admin.bearer(settings) == {"Authorization": f"Bearer {token}"}


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFLOOP_SERVER_URL": "http://127.0.0.1:9"}
    return subprocess.run(
        [sys.executable, "-m", "prefloop", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def test_cli_without_a_service_or_database(settings: Settings, adapter_template: Path) -> None:
    missing = run_cli(settings.home / "nowhere", "models")
    assert missing.returncode == 1 and "no database" in missing.stderr
    add(settings, adapter_template, metrics={"win_rate": 0.625, "pairs": 40, "note": "x"})
    add(settings, adapter_template, parent="v1")
    promoted = run_cli(settings.home, "promote", "v1")
    assert promoted.returncode == 0, promoted.stderr
    assert "promoted v1 (was base)" in promoted.stdout
    assert "no service is running" in promoted.stdout
    listing = run_cli(settings.home, "models")
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "STATUS", "PARENT", "CREATED", "METRICS"]
    assert lines[1].split()[:3] == ["v2", "candidate", "v1"]
    assert lines[2].startswith("*") and lines[2].split()[1:3] == ["v1", "promoted"]
    assert "pairs=40 win_rate=0.625" in lines[2]
    assert lines[3].split() == ["base"]
    as_json = json.loads(run_cli(settings.home, "models", "--format", "json").stdout)
    assert as_json["current"] == "v1" and [v["id"] for v in as_json["versions"]] == ["v2", "v1"]
    again = run_cli(settings.home, "promote", "v1")
    assert again.returncode == 1 and "already the promoted version" in again.stderr
    back = run_cli(settings.home, "rollback")
    assert back.returncode == 0 and "rolled back from v1 to base" in back.stdout
    none_left = run_cli(settings.home, "rollback")
    assert none_left.returncode == 1 and "nothing to roll back" in none_left.stderr
