"""Signal inference, scripted edit by edit against the pure tracker (golden sequences)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from prefloop.lsp.documents import Document
from prefloop.lsp.events import EventFactory
from prefloop.lsp.signals import SignalTimings, SignalTracker
from prefloop.protocol import Event

URI = "file:///work/calc.py"
OTHER = "file:///work/other.py"
TIMINGS = SignalTimings(
    shown_delay=0.2, checkpoints=(30.0, 120.0, 300.0, 600.0), rewrite_idle=10.0, cancel_grace=1.0
)


def summary(events: list[Event]) -> list[tuple[Any, ...]]:
    """Events as short tuples: kind, suggestion, then the kind's own fields."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        fields: tuple[Any, ...] = ()
        data = e.model_dump()
        if e.kind == "accepted" or e.kind == "rewritten":
            fields = (data["text"],)
        elif e.kind == "partially_accepted":
            fields = (data["accepted_chars"], data["text"])
        elif e.kind == "dismissed":
            fields = (data["reason"],)
        elif e.kind == "retained":
            fields = (data["checkpoint"], round(data["similarity"], 3), data["text"])
        out.append((e.kind, e.suggestion_id, *fields))
    return out


class Session:
    """A document and a tracker, driven like an editor drives the language server."""

    def __init__(self, text: str = "total = count", timings: SignalTimings = TIMINGS) -> None:
        self.docs: dict[str, Document] = {URI: Document(URI, text, language_id="python")}
        counter = itertools.count()
        factory = EventFactory(clock=lambda: 0.0, new_id=lambda: f"e{next(counter)}")
        self.tracker = SignalTracker(self.docs, timings, factory)
        self.events: list[Event] = []
        self.now = 100.0

    @property
    def doc(self) -> Document:
        return self.docs[URI]

    def at(self, delta: float) -> None:
        self.now += delta
        self.events += self.tracker.tick(self.now)

    def request(self, offset: int | None = None, uri: str = URI, explicit: bool = False) -> Any:
        offset = len(self.docs[uri].text) if offset is None else offset
        outcome, events = self.tracker.request(uri, offset, self.now, explicit=explicit)
        self.events += events
        return outcome

    def deliver(self, outcome: Any, sid: str, *candidates: str, uri: str = URI) -> None:
        anchor = len(self.docs[uri].text) if uri == URI else 0
        self.events += self.tracker.delivered(
            outcome.ticket, uri, sid, tuple(candidates), anchor, self.now
        )

    def offer(self, sid: str, *candidates: str, shown: bool = True) -> None:
        self.deliver(self.request(), sid, *candidates)
        if shown:
            self.at(0.3)

    def insert(self, text: str, offset: int | None = None, uri: str = URI) -> None:
        doc = self.docs[uri]
        offset = len(doc.text) if offset is None else offset
        line, character = doc.position_at(offset)
        edit = doc.apply(text, (line, character, line, character))
        self.events += self.tracker.edit(uri, edit, self.now)

    def delete(self, start: int, end: int) -> None:
        a, b = self.doc.position_at(start), self.doc.position_at(end)
        edit = self.doc.apply("", (a[0], a[1], b[0], b[1]))
        self.events += self.tracker.edit(URI, edit, self.now)

    def accept(self, sid: str, index: int, inserted: str) -> None:
        self.events += self.tracker.accept(sid, index, inserted, self.now)

    def escape(self) -> bool:
        done, events = self.tracker.dismiss(None, self.now)
        self.events += events
        return done

    def save(self) -> None:
        self.events += self.tracker.save(URI, self.now)

    def close(self, uri: str = URI) -> None:
        self.events += self.tracker.close(uri, self.now)

    def summary(self) -> list[tuple[Any, ...]]:
        return summary(self.events)


def test_shown_only_after_the_window_and_accept_by_command_after_insertion() -> None:
    s = Session()
    s.deliver(s.request(), "S1", " count + 1")
    s.at(0.1)
    assert s.summary() == []
    s.at(0.15)
    assert s.summary() == [("shown", "S1")]
    s.insert(" count + 1")
    s.accept("S1", 0, " count + 1")
    assert s.summary() == [("shown", "S1"), ("accepted", "S1", " count + 1")]
    assert s.tracker.live is None
    [watch] = s.tracker.retention_watches
    assert watch.current_text(s.doc.text) == " count + 1"


def test_accept_command_before_the_insertion_counts_once_and_tracks_the_text() -> None:
    s = Session()
    s.offer("S1", " count + 1")
    s.accept("S1", 0, " count + 1")
    assert s.summary()[-1] == ("accepted", "S1", " count + 1")
    s.insert(" count + 1")
    assert [e for e in s.summary() if e[0] == "accepted"] == [("accepted", "S1", " count + 1")]
    assert len(s.tracker.retention_watches) == 1


def test_superseded_before_the_window_reports_nothing() -> None:
    s = Session()
    s.deliver(s.request(), "S1", " count")
    s.at(0.05)
    s.insert("x")
    s.deliver(s.request(), "S2", "yz")
    s.at(0.3)
    assert s.summary() == [("shown", "S2")]


def test_typing_through_serves_the_remainder_then_partial_accept_and_typed_over() -> None:
    s = Session()
    s.offer("S1", " count + 1")
    s.insert(" co")
    outcome = s.request()
    assert outcome.suggestion_id == "S1"
    assert [(i.candidate_index, i.text) for i in outcome.items] == [(0, "unt + 1")]
    s.insert("x")
    assert s.summary() == [
        ("shown", "S1"),
        ("partially_accepted", "S1", 3, " co"),
        ("dismissed", "S1", "typed_over"),
    ]
    assert s.tracker.live is None


def test_typing_the_whole_suggestion_is_an_acceptance() -> None:
    s = Session()
    s.offer("S1", " + 1")
    for char in " + 1":
        s.insert(char)
    assert s.summary() == [("shown", "S1"), ("accepted", "S1", " + 1")]
    s.accept("S1", 0, "1")  # a late command changes nothing
    assert len([e for e in s.summary() if e[0] == "accepted"]) == 1


def test_backspace_inside_the_typed_part_keeps_the_offer() -> None:
    s = Session()
    s.offer("S1", " count + 1")
    s.insert(" cou")
    end = len(s.doc.text)
    s.delete(end - 2, end)
    outcome = s.request()
    assert [i.text for i in outcome.items] == ["ount + 1"]


def test_typed_over_then_rewritten_until_the_user_leaves_the_block() -> None:
    s = Session("total = count\n\nprint(total)\n")
    anchor = len("total = count")
    s.deliver(s.tracker.request(URI, anchor, s.now)[0], "S1", " + 1")
    # deliver() anchors at the end of the text; re-anchor this offer at the line end
    s.events.clear()
    s.tracker = SignalTracker(s.docs, TIMINGS, EventFactory(new_id=lambda: "e"))
    outcome, _ = s.tracker.request(URI, anchor, s.now)
    s.tracker.delivered(outcome.ticket, URI, "S1", (" + 1",), anchor, s.now)
    s.at(0.3)
    s.insert(" * 2", anchor)
    s.insert(" - 3", anchor + 4)
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "typed_over")]
    # typing on another line ends the rewrite
    s.insert("# done\n", 0)
    assert s.summary()[-1] == ("rewritten", "S1", " * 2 - 3")
    assert s.tracker.rewrite_watches == ()


def test_escape_then_write_something_else_then_request_elsewhere() -> None:
    s = Session("total = count\n")
    s.offer("S1", " + 1")
    assert s.escape() is True
    s.insert("_all")
    s.insert("()")
    s.request(0)
    assert s.summary() == [
        ("shown", "S1"),
        ("dismissed", "S1", "escaped"),
        ("rewritten", "S1", "_all()"),
    ]


def test_escape_before_the_window_still_reports_shown() -> None:
    s = Session()
    s.deliver(s.request(), "S1", " + 1")
    assert s.escape()
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "escaped")]
    assert s.escape() is False


def test_rewrite_ends_after_idle_time_and_an_unchanged_text_is_not_a_rewrite() -> None:
    s = Session()
    s.offer("S1", " + 1")
    s.escape()
    s.insert(" - 1")
    s.at(5)
    assert s.summary()[-1][0] == "dismissed"
    s.at(11)
    assert s.summary()[-1] == ("rewritten", "S1", " - 1")

    t = Session()
    t.offer("S2", " + 1")
    t.escape()
    t.insert(" + 1")
    t.at(11)
    assert [e[0] for e in t.summary()] == ["shown", "dismissed"]


def test_request_on_another_line_is_moved_away_same_line_new_offer_is_replaced() -> None:
    s = Session("a = 1\nb = 2\n")
    s.offer("S1", "x")
    outcome = s.request(0)
    s.events += s.tracker.delivered(outcome.ticket, URI, "S2", ("y",), 0, s.now)
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "moved_away")]
    s.at(0.3)
    outcome = s.request(1)  # same line, not where S2 continues
    s.events += s.tracker.delivered(outcome.ticket, URI, "S3", ("z",), 1, s.now)
    assert s.summary()[-2:] == [("shown", "S2"), ("dismissed", "S2", "replaced_by_newer")]


def test_explicit_request_at_the_same_place_replaces_the_offer() -> None:
    s = Session()
    s.offer("S1", " + 1")
    outcome = s.request(explicit=True)
    assert outcome.items == ()
    s.deliver(outcome, "S2", " - 1")
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "replaced_by_newer")]


def test_request_that_brings_nothing_is_moved_away_and_cancellation_waits() -> None:
    s = Session()
    s.offer("S1", " + 1")
    outcome = s.request(0)
    s.events += s.tracker.no_suggestion(outcome.ticket, s.now, cancelled=True)
    assert s.summary() == [("shown", "S1")]
    s.at(0.5)
    assert s.summary() == [("shown", "S1")]
    s.at(0.6)
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "moved_away")]

    t = Session()
    t.offer("S1", " + 1")
    t.events += t.tracker.no_suggestion(t.request(0).ticket, t.now)
    assert t.summary() == [("shown", "S1"), ("dismissed", "S1", "moved_away")]


def test_edit_on_another_line_is_moved_away() -> None:
    s = Session("import os\ntotal = count")
    s.offer("S1", " + 1")
    s.insert("import sys\n", 0)
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "moved_away")]


def test_request_in_another_document_is_moved_away() -> None:
    s = Session()
    s.docs[OTHER] = Document(OTHER, "x = 1\n")
    s.offer("S1", " + 1")
    outcome = s.request(0, uri=OTHER)
    s.deliver(outcome, "S2", "y", uri=OTHER)
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "moved_away")]


def test_closing_the_document_dismisses_and_snapshots() -> None:
    s = Session()
    s.offer("S1", " + 1")
    s.close()
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "closed")]

    t = Session()
    t.offer("S2", " + 1")
    t.insert(" + 1")
    t.insert("0")  # typed right after the accepted text: not part of it
    t.close()
    assert t.summary()[-1] == ("retained", "S2", "close", 1.0, " + 1")


def test_retention_checkpoints_follow_edits_above_and_inside() -> None:
    s = Session("x = 1\ntotal = count")
    s.offer("S1", " + 100")
    s.insert(" + 100")
    s.insert("# header\n", 0)  # above: the range moves down
    s.at(30)
    assert s.summary()[-1] == ("retained", "S1", "30s", 1.0, " + 100")
    start = s.doc.text.index("100")
    s.delete(start, start + 3)
    s.insert("7", start)
    s.at(90)
    kind, _, checkpoint, similarity, text = s.summary()[-1]
    assert (kind, checkpoint, text) == ("retained", "2m", " + 7")
    assert similarity == pytest.approx(1 - 3 / 6, abs=1e-3)
    s.save()
    s.save()  # unchanged since the last save: no second snapshot
    assert [e[2] for e in s.summary() if e[0] == "retained"] == ["30s", "2m", "save"]
    s.at(180)
    s.at(300)
    assert [e[2] for e in s.summary() if e[0] == "retained"] == ["30s", "2m", "save", "5m", "10m"]
    assert s.tracker.retention_watches == ()


def test_deleting_the_accepted_text_drops_similarity_to_zero() -> None:
    s = Session()
    s.offer("S1", " + 1")
    s.insert(" + 1")
    end = len(s.doc.text)
    s.delete(end - 4, end)
    s.at(30)
    assert s.summary()[-1] == ("retained", "S1", "30s", 0.0, "")


def test_late_accept_for_a_forgotten_suggestion_is_still_reported() -> None:
    s = Session()
    s.accept("unknown", 1, "text")
    assert s.summary() == [("accepted", "unknown", "text")]


def test_second_candidate_typed_through_and_accepted() -> None:
    s = Session()
    s.offer("S1", " + 1", " - 1")
    s.insert(" -")
    outcome = s.request()
    assert [(i.candidate_index, i.text) for i in outcome.items] == [(1, " 1")]
    s.insert(" 1")
    assert s.summary()[-1] == ("accepted", "S1", " - 1")
    assert s.events[-1].candidate_index == 1


def test_deadlines_drive_ticks() -> None:
    s = Session()
    assert s.tracker.next_deadline() is None
    s.deliver(s.request(), "S1", " + 1")
    assert s.tracker.next_deadline() == pytest.approx(s.now + 0.2)


def test_backspace_into_the_prefix_is_typed_over_and_the_rewrite_follows() -> None:
    s = Session("total = count")
    s.offer("S1", " + 1")
    end = len(s.doc.text)
    s.delete(end - 5, end)  # "count" removed right before the suggestion
    s.insert("amount")
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "typed_over")]
    s.close()
    assert s.summary()[-1] == ("rewritten", "S1", "amount")


def test_edit_earlier_on_the_same_line_is_moved_away() -> None:
    s = Session("total = count")
    s.offer("S1", " + 1")
    s.insert("_", 5)
    assert s.summary() == [("shown", "S1"), ("dismissed", "S1", "moved_away")]
    assert s.request().items == ()
