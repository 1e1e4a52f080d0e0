"""The access layer's pure parts: reading a Host header, matching allowed hosts, checking
tokens against a store; and its benchmark, run small."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.auth import run
from prefloop.server.access import host_allowed, host_name
from prefloop.settings import Settings
from prefloop.users import InvalidName, TokenChecker, add_user, check_name, revoke_user, token_hash


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("127.0.0.1:8765", "127.0.0.1"),
        ("LocalHost", "localhost"),
        ("[::1]:8765", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("code.example.com:443", "code.example.com"),
        ("", ""),
    ],
)
def test_host_name(header: str, host: str) -> None:
    assert host_name(header) == host


def test_host_allowed() -> None:
    allowed = ["localhost", "127.0.0.1", "*.corp.example"]
    assert host_allowed("localhost", allowed)
    assert host_allowed("gpu.corp.example", allowed)
    assert not host_allowed("corp.example", allowed)
    assert not host_allowed("evilcorp.example", allowed)
    assert not host_allowed("127.0.0.1.nip.io", allowed)
    assert not host_allowed("", allowed)
    assert host_allowed("anything", ["*"])


def test_tokens_are_checked_by_hash_and_die_when_revoked(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    _, token = add_user(settings, "ann", role="admin", created_by="root")
    assert token.startswith("pfl_") and token_hash(token) != token
    checker = TokenChecker(settings)
    checked = checker.check(token)
    assert checked.record is not None and checked.record.user == "ann"
    assert checked.record.role == "admin" and checked.record.created_by == "root"
    assert checker.check(token[:-1] + ("A" if token[-1] != "A" else "B")).refusal == "wrong"
    assert checker.check("not-a-prefloop-token").refusal == "wrong"
    revoke_user(settings, "ann")
    assert checker.check(token).refusal == "revoked"
    checker.close()


@pytest.mark.parametrize("name", ["", "-ann", "ann smith", "a" * 65, "ann/../x"])
def test_invalid_user_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        check_name(name)


def test_the_access_benchmark_runs() -> None:
    result = run(users=3, requests=20)
    assert result["team_layer_us"]["n"] == result["local_layer_us"]["n"] == 20
