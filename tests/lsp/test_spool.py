"""The durable event spool: ordering, idempotence, leases, persistence."""

from __future__ import annotations

import stat
from pathlib import Path

from prefloop.lsp.spool import SPOOL_FILE, Spool
from tests.waiting import wait_until


def test_add_claim_delete_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.add([("a", "{1}"), ("b", "{2}"), ("c", "{3}")]) == 3
    assert spool.add([("b", "{other}"), ("d", "{4}")]) == 1  # ids are unique
    batch = spool.claim("me", 2, 30)
    assert [(s.id, s.body) for s in batch] == [("a", "{1}"), ("b", "{2}")]
    assert [s.id for s in spool.claim("someone else", 10, 30)] == ["c", "d"]
    assert spool.claim("me", 10, 30) == []  # everything is leased
    spool.delete(["a", "b"])
    assert spool.count() == 2


def test_release_makes_events_claimable_again_and_counts_refusals(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.add([("a", "{}")])
    [first] = spool.claim("me", 5, 30)
    spool.release([first.id], refused=True)
    [again] = spool.claim("me", 5, 30)
    assert again.attempts == 1
    spool.release([again.id])
    assert spool.claim("me", 5, 30)[0].attempts == 1


def test_expired_leases_are_claimable(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.add([("a", "{}")])
    assert spool.claim("crashed", 5, 0.05)
    assert spool.claim("me", 5, 30) == []
    claimed = wait_until(
        lambda: spool.claim("me", 5, 30),
        what="the crashed sender's lease of 0.05 s to run out",
        timeout=5,
        interval=0.01,
    )
    assert [s.id for s in claimed] == ["a"]


def test_events_survive_reopening_and_the_file_is_private(tmp_path: Path) -> None:
    first = Spool(tmp_path / "spool")
    first.add([("a", '{"x": 1}')])
    first.close()
    second = Spool(tmp_path / "spool")
    assert [(s.id, s.body) for s in second.claim("me", 5, 30)] == [("a", '{"x": 1}')]
    mode = (tmp_path / "spool" / SPOOL_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
