"""Team mode against a real `prefloop serve` over HTTPS: tokens on every route, identity
from the token, users through the CLI and the admin API, the Host check, private files.

One service (``PREFLOOP_AUTH=tokens``, a self-signed certificate) with four users made by
``prefloop users add`` before it starts: developers ann and bob, the admin root, and gone,
revoked at once.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefloop import registry
from prefloop.settings import Settings
from prefloop.store import Store
from tests.adapters import make_lora_adapter
from tests.conftest import REPO, ServerProcess, start_server
from tests.trainer.training_data import FAST, TINY_MODEL_GATE, add_pairs
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e]

PROMPT = {"prefix": "def add(a, b):", "language": "python", "max_tokens": 4}
WRONG = "pfl_" + "x" * 43


def prefloop_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefloop", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def add_user(home: Path, name: str, *extra: str) -> str:
    done = prefloop_cli(home, "users", "add", name, *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class Team:
    server: ServerProcess
    tokens: dict[str, str]
    """Each user's token: ann, bob (developers), root (admin), gone (revoked)."""
    tiny_model_dir: Path

    def client(self, who: str | None) -> httpx.Client:
        """A client with ``who``'s token; ``None``: none; ``wrong``: a made-up one."""
        if who is None:
            return self.server.client()
        token = WRONG if who == "wrong" else self.tokens[who]
        return self.server.client(token=token)

    def store(self) -> Store:
        return Store(self.server.db_path)

    def suggest(self, who: str, **extra: Any) -> str:
        """A suggestion for ``who``, once it is stored; its id."""
        with self.client(who) as client:
            answer = client.post("/v1/suggestions", json={**PROMPT, **extra})
        assert answer.status_code == 200, answer.text
        suggestion_id: str = answer.json()["suggestion_id"]

        def stored() -> dict[str, Any] | None:
            with self.store() as store:
                return store.get_suggestion(suggestion_id)

        wait_until(stored, what=f"suggestion {suggestion_id} stored", timeout=30, interval=0.1)
        return suggestion_id


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Team]:
    home = tmp_path_factory.mktemp("team") / "home"  # created by `prefloop users add`
    tokens = {
        "ann": add_user(home, "ann"),
        "bob": add_user(home, "bob"),
        "root": add_user(home, "root", "--admin"),
        "gone": add_user(home, "gone"),
    }
    assert prefloop_cli(home, "users", "revoke", "gone").returncode == 0
    tls = make_certificate(tmp_path_factory.mktemp("tls"))
    server = start_server(
        home,
        tiny_model_dir,
        extra_env={
            "PREFLOOP_AUTH": "tokens",
            "PREFLOOP_SWAP_POLL_SECONDS": "0",
            # A gate no candidate can pass: a retrain is rejected and nothing served moves.
            **{f"PREFLOOP_{k.upper()}": str(v) for k, v in TINY_MODEL_GATE.items()},
            "PREFLOOP_TRAIN_GATE_MIN_MARGIN_GAIN": "1e9",
        },
        tls=tls,
    )
    yield Team(server, tokens, tiny_model_dir)
    server.stop()


# (method, path, body, needs an admin)
ROUTES: list[tuple[str, str, dict[str, Any] | None, bool]] = [
    ("POST", "/v1/suggestions", PROMPT, False),
    ("POST", "/v1/events", {"events": []}, False),
    ("GET", "/docs", None, False),
    ("GET", "/openapi.json", None, False),
    ("GET", "/metrics", None, True),
    ("GET", "/healthz", None, False),
    ("GET", "/admin/models", None, True),
    ("GET", "/admin/runs", None, True),
    ("GET", "/admin/promotions", None, True),
    ("GET", "/admin/users", None, True),
    ("POST", "/admin/reload", None, True),
]


@pytest.mark.parametrize(("method", "path", "body", "admin_only"), ROUTES)
def test_every_route_wants_a_live_token(
    team: Team, method: str, path: str, body: dict[str, Any] | None, admin_only: bool
) -> None:
    def call(who: str | None) -> httpx.Response:
        with team.client(who) as client:
            return client.request(method, path, json=body)

    for who in ("wrong", "gone"):
        refused = call(who)
        assert refused.status_code == 401, (who, refused.text)
        assert refused.headers["www-authenticate"] == "Bearer"
        assert ("revoked" if who == "gone" else "not valid") in refused.json()["error"]
    missing = call(None)
    if path == "/healthz":
        assert missing.status_code == 200 and missing.json() == {"status": "ok"}
    else:
        assert missing.status_code == 401
        assert "Authorization: Bearer" in missing.json()["error"]
    developer = call("ann")
    if admin_only:
        assert developer.status_code == 403, developer.text
        assert "admin" in developer.json()["error"]
    else:
        assert developer.status_code == 200, developer.text
    admin = call("root")
    assert admin.status_code == 200, admin.text
    if path == "/healthz":
        assert developer.json() == {"status": "ok"}, "a developer sees the status only"
        assert admin.json()["db"]["path"].endswith("prefloop.db"), "an admin sees it all"


def test_refused_callers_store_nothing_and_are_counted(team: Team) -> None:
    with team.client("root") as client:
        before = client.get("/metrics").text
    with team.store() as store:
        suggestions = store.count("suggestions")
    for who in ("wrong", "gone", None):
        with team.client(who) as client:
            assert client.post("/v1/suggestions", json=PROMPT).status_code == 401
    team.suggest("ann")  # stored after anything the refused requests could have queued
    with team.store() as store:
        assert store.count("suggestions") == suggestions + 1
    with team.client("root") as client:
        after = client.get("/metrics").text

    def counted(text: str, reason: str) -> float:
        line = f'prefloop_auth_refused_total{{reason="{reason}"}} '
        found = [row for row in text.splitlines() if row.startswith(line)]
        return float(found[0].split()[-1]) if found else 0.0

    for reason in ("wrong", "revoked", "missing"):
        assert counted(after, reason) - counted(before, reason) == 1, reason


def test_the_user_comes_from_the_token(team: Team) -> None:
    mine = team.suggest("ann")
    named = team.suggest("ann", user="ann")
    with team.store() as store:
        assert store.get_suggestion(mine)["user"] == "ann"  # type: ignore[index]
        assert store.get_suggestion(named)["user"] == "ann"  # type: ignore[index]
        count = store.count("suggestions")
    with team.client("ann") as client:
        forged = client.post("/v1/suggestions", json={**PROMPT, "user": "bob"})
    assert forged.status_code == 403
    assert "comes from the token" in forged.json()["error"]
    team.suggest("bob")
    with team.store() as store:
        assert store.count("suggestions") == count + 1, "the forged request stored nothing"


def test_events_only_for_ones_own_suggestions(team: Team) -> None:
    anns = team.suggest("ann")

    def event(kind: str = "shown", **extra: Any) -> dict[str, Any]:
        return {"id": f"ev-{uuid.uuid4().hex}", "suggestion_id": anns, "kind": kind, **extra}

    theirs = event("rewritten", text="planted by bob")
    with team.client("bob") as client:
        answer = client.post("/v1/events", json={"events": [theirs]})
    assert answer.status_code == 422
    assert answer.json()["refused"] == [
        {"index": 0, "id": theirs["id"], "error": "unknown suggestion_id"}
    ]
    forged = event("accepted", text="x", user="ann")
    with team.client("bob") as client:
        answer = client.post("/v1/events", json={"events": [forged]})
    assert answer.status_code == 403 and "comes from the token" in answer.json()["error"]
    own = event()
    with team.client("ann") as client:
        answer = client.post("/v1/events", json={"events": [own]})
    assert answer.status_code == 200 and answer.json()["stored"] == [own["id"]]
    with team.store() as store:
        stored = store.query_events(suggestion_id=anns)
    assert [(e["id"], e["user"]) for e in stored] == [(own["id"], "ann")]


def test_admin_routes_refuse_a_developer_and_record_the_admin(team: Team) -> None:
    settings = Settings(home=team.server.home)
    previous = os.umask(0o077)  # as in every prefloop process (a training run registers)
    try:
        staged = registry.staging_dir(settings)
        make_lora_adapter(team.tiny_model_dir, staged, seed=3)
        version = registry.register(
            settings, staged, run_id=None, parent="base", base_model="tiny", metrics={}
        )
    finally:
        os.umask(previous)
    with team.client("ann") as client:
        for path, body in (
            ("/admin/promote", {"version": version.id}),
            ("/admin/rollback", None),
            ("/admin/retrain", {"force": True}),
            ("/admin/users", {"name": "mallory", "role": "admin"}),
        ):
            answer = client.post(path, json=body)
            assert answer.status_code == 403, (path, answer.text)
    assert registry.current(settings) is None
    with team.client("root") as client:
        assert client.post("/admin/promote", json={"version": version.id}).status_code == 200
        assert client.post("/admin/rollback").status_code == 200
        history = client.get("/admin/promotions").json()["promotions"]
        users = {u["name"] for u in client.get("/admin/users").json()["users"]}
    assert [(p["action"], p["to_version"], p["requested_by"]) for p in history] == [
        ("rollback", "base", "root"),
        ("promote", version.id, "root"),
    ]
    assert "mallory" not in users


def test_a_retrain_records_the_admin_who_asked(team: Team) -> None:
    add_pairs(team.server.db_path, train=8, heldout=2, users=("ann", "bob"))
    with team.client("root") as client:
        started = client.post("/admin/retrain", json={"config": FAST, "force": True})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert client.get(f"/admin/runs/{run_id}").json()["requested_by"] == "root"
        run = wait_until(
            lambda: client.get(f"/admin/runs/{run_id}").json(),
            lambda now: now["status"] in ("succeeded", "rejected", "failed"),
            what=f"run {run_id} to finish",
            timeout=600,
            interval=0.5,
        )
    assert run["status"] == "rejected", run["error"]
    shown = prefloop_cli(team.server.home, "runs")
    assert shown.returncode == 0, shown.stderr
    (row,) = [line for line in shown.stdout.splitlines() if run_id[:8] in line]
    assert "root" in row


def test_users_through_the_admin_api(team: Team) -> None:
    with team.client("root") as admin:
        added = admin.post("/admin/users", json={"name": "carol"})
        assert added.status_code == 201, added.text
        token = added.json()["token"]
        assert token.startswith("pfl_") and added.json()["user"]["role"] == "developer"
        assert admin.post("/admin/users", json={"name": "carol"}).status_code == 409
        assert admin.post("/admin/users", json={"name": "-x y"}).status_code == 422
        assert admin.delete("/admin/users/nobody").status_code == 404

        with team.server.client(token=token) as carol:
            assert carol.post("/v1/suggestions", json=PROMPT).status_code == 200

        def carol_entry() -> dict[str, Any]:
            listing = admin.get("/admin/users")
            assert token not in listing.text, "a listing never shows a token"
            entry: dict[str, Any] = next(u for u in listing.json()["users"] if u["name"] == "carol")
            return entry

        wait_until(
            carol_entry,
            lambda entry: entry["last_used_at"] is not None,
            what="carol's last use recorded",
            timeout=30,
            interval=0.1,
        )
        rotated = admin.post("/admin/users/carol/rotate")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["token"]
        assert new != token and rotated.json()["user"]["tokens"] == 2
        with team.server.client(token=token) as old:
            assert old.post("/v1/suggestions", json=PROMPT).status_code == 401
        with team.server.client(token=new) as carol:
            assert carol.post("/v1/suggestions", json=PROMPT).status_code == 200
        revoked = admin.delete("/admin/users/carol")
        assert revoked.status_code == 200 and revoked.json()["user"]["active"] is False
        with team.server.client(token=new) as carol:
            assert carol.post("/v1/suggestions", json=PROMPT).status_code == 401
        assert admin.post("/admin/users/carol/rotate").status_code == 404


def test_users_through_the_cli(team: Team, tmp_path: Path) -> None:
    home = team.server.home
    token = add_user(home, "dave")
    assert token.startswith("pfl_") and len(token) > 40
    again = prefloop_cli(home, "users", "add", "dave")
    assert again.returncode == 1 and "already has a token" in again.stderr
    listing = prefloop_cli(home, "users", "list")
    assert listing.returncode == 0 and token not in listing.stdout
    rows = {line.split()[1]: line for line in listing.stdout.splitlines() if "│" in line}
    assert "developer" in rows["dave"] and "active" in rows["dave"]
    assert "admin" in rows["root"] and "revoked" in rows["gone"]
    with team.server.client(token=token) as dave:
        assert dave.post("/v1/suggestions", json=PROMPT).status_code == 200
    rotated = prefloop_cli(home, "users", "rotate", "dave")
    assert rotated.returncode == 0
    new = rotated.stdout.strip()
    with team.server.client(token=token) as old, team.server.client(token=new) as dave:
        assert old.post("/v1/suggestions", json=PROMPT).status_code == 401
        assert dave.post("/v1/suggestions", json=PROMPT).status_code == 200
    assert prefloop_cli(home, "users", "revoke", "dave").returncode == 0
    with team.server.client(token=new) as dave:
        assert dave.post("/v1/suggestions", json=PROMPT).status_code == 401
    missing = prefloop_cli(home, "users", "revoke", "dave")
    assert missing.returncode == 1 and "no active user" in missing.stderr
    # Only hashes are kept: no token is in the database or its WAL.
    for path in home.glob("prefloop.db*"):
        data = path.read_bytes()
        assert token.encode() not in data and new.encode() not in data, path.name


def test_a_foreign_host_header_is_refused(team: Team) -> None:
    with team.store() as store:
        count = store.count("suggestions")
    with team.client("ann") as client:
        for host in ("evil.example", "attacker.test:8765", "127.0.0.1.nip.io"):
            answer = client.post("/v1/suggestions", json=PROMPT, headers={"Host": host})
            assert answer.status_code == 400, host
            assert "Host header" in answer.json()["error"]
        for host in ("localhost", f"127.0.0.1:{team.server.url.rsplit(':', 1)[1]}"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 200
    team.suggest("ann")
    with team.store() as store:
        assert store.count("suggestions") == count + 1


def test_files_in_the_home_are_private(team: Team) -> None:
    home = team.server.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    team.suggest("ann")
    assert {"prefloop.db", "prefloop.db-wal", "admin-token"} <= {p.name for p in home.iterdir()}
    loose = []
    for root, dirs, files in os.walk(home):
        for name in [*dirs, *files]:
            path = Path(root) / name
            if path == team.server.log_path:
                continue  # written by this test's harness, not by the service
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                loose.append(f"{path.relative_to(home)} {stat.S_IMODE(path.stat().st_mode):04o}")
    assert loose == []


def test_a_wide_bind_warns_and_local_mode_checks_the_host(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    (home / "notes.txt").write_text("left here")
    (home / "notes.txt").chmod(0o644)
    server = start_server(
        home,
        tiny_model_dir,
        extra_env={"PREFLOOP_HOST": "0.0.0.0", "PREFLOOP_AUTH": "local"},
    )
    try:
        log = server.log()
        assert "bound to 0.0.0.0 without TLS" in log
        assert "PREFLOOP_AUTH=local" in log
        assert "set PREFLOOP_ALLOWED_HOSTS to the names the developers use" in log
        assert "is open to other users (mode 0755)" in log
        assert "notes.txt (0644)" in log
        with server.client() as client:
            assert client.post("/v1/suggestions", json=PROMPT).status_code == 200
            foreign = client.get("/healthz", headers={"Host": "rebound.example"})
            assert foreign.status_code == 400
    finally:
        server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize(
    ("host", "auth", "mode"),
    [
        ("127.0.0.1", "auto", "local"),
        ("localhost", "auto", "local"),
        ("::1", "auto", "local"),
        ("0.0.0.0", "auto", "tokens"),
        ("10.1.2.3", "auto", "tokens"),
        ("gpu-host.internal", "auto", "tokens"),
        ("127.0.0.1", "tokens", "tokens"),
        ("0.0.0.0", "local", "local"),
    ],
)
def test_auth_mode_follows_the_bind(host: str, auth: str, mode: str) -> None:
    assert Settings(host=host, auth=auth).auth_mode == mode  # type: ignore[arg-type]


def test_allowed_hosts_default_and_setting() -> None:
    assert Settings(host="0.0.0.0").allowed_host_names == [
        "localhost",
        "127.0.0.1",
        "::1",
        "0.0.0.0",
    ]
    assert Settings(allowed_hosts="Code.Example.com, *.corp").allowed_host_names == [
        "code.example.com",
        "*.corp",
    ]


@pytest.mark.parametrize(
    ("host", "auth", "setting", "promotes"),
    [
        ("127.0.0.1", "auto", None, True),
        ("0.0.0.0", "auto", None, False),
        ("127.0.0.1", "tokens", None, False),
        ("0.0.0.0", "local", None, True),
        ("0.0.0.0", "auto", True, True),
        ("127.0.0.1", "auto", False, False),
    ],
)
def test_auto_promotion_is_off_in_team_mode_unless_set(
    host: str, auth: str, setting: bool | None, promotes: bool
) -> None:
    settings = Settings(host=host, auth=auth, train_auto_promote=setting)  # type: ignore[arg-type]
    assert settings.auto_promote is promotes
