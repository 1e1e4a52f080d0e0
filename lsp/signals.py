"""Signal inference: from what an editor tells a language server to feedback events.

Only what every LSP editor sends is used (``didChange`` edits, inline completion
requests, the ``prefloop.accept``/``prefloop.dismiss`` commands, ``didSave`` and
``didClose``), so VS Code, Neovim and Helix users produce the same data. The tracker is
pure: no I/O and no clock of its own. Every method takes ``now`` (monotonic seconds) and
returns the events it inferred; the server calls :meth:`SignalTracker.tick` at
:meth:`SignalTracker.next_deadline`.

The life of a suggestion (an *offer*):

* delivered → ``shown`` once it stayed on screen for ``shown_delay`` without being
  superseded (an offer superseded sooner was never really seen and reports nothing);
* the user types (or accepts word by word) text the offer starts with → the offer stays,
  and the next request at its end is served its remainder from cache;
* the whole candidate is in the document → ``accepted`` (the accept command says the
  same; whichever comes first counts, once), then retention snapshots follow;
* typed text diverges (or the text right before it is deleted) → ``dismissed``
  (``typed_over``); Escape → ``escaped``; a request or edit on another line, or an edit
  before it → ``moved_away``; a newer suggestion delivered on the same line
  → ``replaced_by_newer``; the document closed → ``closed``. An offer that ends with
  part of it typed (more than whitespace) reports ``partially_accepted`` first. After
  ``typed_over`` and ``escaped`` a rewrite watch records what the user writes there.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from prefloop.protocol import Checkpoint, DismissReason, Event

from .documents import Edit
from .events import EventFactory
from .offers import Offer, RequestOutcome, common_prefix
from .ranges import Relation, TrackedRange
from .retention import RetentionWatch
from .rewrites import Lines, RewriteWatch, on_lines_of

RECENT_OUTCOMES = 256
"""How many finished suggestions are remembered, so a late accept command is recognised."""
MAX_WATCHES_PER_DOCUMENT = 64


@dataclass(frozen=True)
class SignalTimings:
    """The delays signal inference works with, in seconds."""

    shown_delay: float = 0.25
    checkpoints: tuple[float, ...] = (30.0, 120.0, 300.0, 600.0)
    rewrite_idle: float = 10.0
    cancel_grace: float = 1.0
    """How long a suggestion whose successor request was cancelled waits for the next
    request before it counts as moved away."""


@dataclass
class _Pending:
    """An offer superseded by a request whose outcome decides how it ended."""

    offer: Offer
    uri: str
    line: int
    ticket: int
    deadline: float | None = None


@dataclass
class SignalTracker:
    """Signal inference for one editor (one language server): one offer on screen at a
    time, retention and rewrite watches per document."""

    documents: Mapping[str, Lines]
    timings: SignalTimings = field(default_factory=SignalTimings)
    factory: EventFactory = field(default_factory=EventFactory)

    def __post_init__(self) -> None:
        self._live: Offer | None = None
        self._pending: _Pending | None = None
        self._ticket = 0
        self._retention: list[RetentionWatch] = []
        self._rewrites: list[RewriteWatch] = []
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._out: list[Event] = []

    # ---- inspection ------------------------------------------------------------------

    @property
    def live(self) -> Offer | None:
        return self._live

    def is_current(self, ticket: int) -> bool:
        """Whether ``ticket`` belongs to the latest request (older ones are superseded)."""
        return ticket == self._ticket

    @property
    def retention_watches(self) -> tuple[RetentionWatch, ...]:
        return tuple(self._retention)

    @property
    def rewrite_watches(self) -> tuple[RewriteWatch, ...]:
        return tuple(self._rewrites)

    # ---- requests and responses --------------------------------------------------------

    def request(
        self, uri: str, offset: int, now: float, *, explicit: bool = False
    ) -> tuple[RequestOutcome, list[Event]]:
        """A completion request at ``offset`` of ``uri``."""
        self._ticket += 1
        ticket = self._ticket
        for watch in list(self._rewrites):
            if watch.uri != uri or not watch.range.contains(offset):
                self._finish_rewrite(watch)
        offer = self._live
        doc = self.documents.get(uri)
        if offer is not None:
            if (
                offer.uri == uri
                and doc is not None
                and not explicit
                and not offer.accept_reported
                and offset == offer.region.end
            ):
                items = offer.remainders(offer.typed(doc))
                if items:
                    return RequestOutcome(ticket, offer.suggestion_id, items), self._take()
            self._leave(offer)
            self._supersede(offer, ticket, now)
        elif self._pending is not None:
            self._pending.ticket = ticket
            self._pending.deadline = None
        return RequestOutcome(ticket), self._take()

    def delivered(
        self,
        ticket: int,
        uri: str,
        suggestion_id: str,
        candidates: tuple[str, ...],
        anchor: int,
        now: float,
    ) -> list[Event]:
        """The service answered request ``ticket`` and its candidates go on screen."""
        doc = self.documents.get(uri)
        if ticket != self._ticket or doc is None or not candidates:
            return self.no_suggestion(ticket, now)
        pending, self._pending = self._pending, None
        if pending is not None:
            same_place = pending.uri == uri and doc.line_at(anchor) == pending.line
            self._end(pending.offer, "replaced_by_newer" if same_place else "moved_away", now)
        if self._live is not None:
            offer = self._live
            self._leave(offer)
            self._end(offer, "moved_away", now)
        self._live = Offer(
            suggestion_id=suggestion_id,
            uri=uri,
            candidates=candidates,
            region=TrackedRange(anchor, anchor, growing=True),
            delivered_at=now,
        )
        return self._take()

    def no_suggestion(self, ticket: int, now: float, *, cancelled: bool = False) -> list[Event]:
        """Request ``ticket`` put nothing on screen. A cancelled request gives the next
        one a moment to take over before the superseded offer counts as moved away."""
        pending = self._pending
        if pending is not None and ticket == self._ticket:
            if cancelled:
                pending.deadline = now + self.timings.cancel_grace
            else:
                self._pending = None
                self._end(pending.offer, "moved_away", now)
        return self._take()

    # ---- document changes --------------------------------------------------------------

    def edit(self, uri: str, edit: Edit, now: float) -> list[Event]:
        """``edit`` was applied to ``uri`` (the document already holds its result)."""
        doc = self.documents.get(uri)
        if doc is None:
            return []
        # Existing watches first: the offer may start new ones that already include this edit.
        for watch in self._retention:
            if watch.uri == uri:
                watch.follow(edit)
        for rewrite in list(self._rewrites):
            if rewrite.uri == uri and not rewrite.follow(edit, doc, now):
                self._finish_rewrite(rewrite)
        offer = self._live
        if offer is not None and offer.uri == uri:
            anchor = offer.region.start
            relation = offer.region.apply(edit)
            if relation is Relation.INSIDE:
                self._check(offer, doc, now)
            elif relation is Relation.ACROSS_START or (
                relation is Relation.BEFORE and edit.end == anchor
            ):
                # Text at the suggestion's place changed (typed across it, backspaced
                # into what precedes it): it no longer fits there.
                self._leave(offer)
                self._end(offer, "typed_over", now)
            elif relation is Relation.BEFORE or not on_lines_of(offer.region, edit.start, doc):
                # The context before it changed, or an edit happened on another line: the
                # cursor is elsewhere.
                self._leave(offer)
                self._end(offer, "moved_away", now)
        return self._take()

    def _check(self, offer: Offer, doc: Lines, now: float) -> None:
        typed = offer.typed(doc)
        matching = [i for i, c in enumerate(offer.candidates) if c.startswith(typed)]
        if not matching:
            self._leave(offer)
            self._end(offer, "typed_over", now)
            return
        if offer.candidate not in matching:
            offer.candidate = matching[0]
        if len(offer.text) == len(typed):
            self._leave(offer)
            self._accepted(offer, now)

    def save(self, uri: str, now: float) -> list[Event]:
        """``uri`` was saved: a retention snapshot of each watched acceptance that changed
        since the last save."""
        doc = self.documents.get(uri)
        if doc is not None:
            for watch in self._retention:
                if watch.uri != uri:
                    continue
                text = watch.current_text(doc.text)
                if text != watch.last_save_text:
                    watch.last_save_text = text
                    self._snapshot(watch, "save", doc)
        return self._take()

    def close(self, uri: str, now: float) -> list[Event]:
        """``uri`` is closing (call before the document is forgotten)."""
        doc = self.documents.get(uri)
        offer = self._live
        if offer is not None and offer.uri == uri:
            self._leave(offer)
            self._end(offer, "closed", now)
        pending = self._pending
        if pending is not None and pending.uri == uri:
            self._pending = None
            self._end(pending.offer, "closed", now)
        for watch in [w for w in self._retention if w.uri == uri]:
            if doc is not None:
                self._snapshot(watch, "close", doc)
            self._retention.remove(watch)
        for rewrite in [r for r in self._rewrites if r.uri == uri]:
            self._finish_rewrite(rewrite)
        return self._take()

    def shutdown(self, now: float) -> list[Event]:
        """The editor is going away: every document counts as closed."""
        uris = {w.uri for w in self._retention} | {r.uri for r in self._rewrites}
        if self._live is not None:
            uris.add(self._live.uri)
        if self._pending is not None:
            uris.add(self._pending.uri)
        out: list[Event] = []
        for uri in sorted(uris):
            out.extend(self.close(uri, now))
        return out

    # ---- commands ----------------------------------------------------------------------

    def accept(self, suggestion_id: str, index: int, inserted: str, now: float) -> list[Event]:
        """The accept command attached to an item ran (``inserted`` is the item's text)."""
        offer: Offer | None = None
        tracked = False
        if self._live is not None and self._live.suggestion_id == suggestion_id:
            offer, tracked = self._live, True
        elif self._pending is not None and self._pending.offer.suggestion_id == suggestion_id:
            offer, self._pending = self._pending.offer, None
        if offer is None:
            outcome = self._recent.get(suggestion_id)
            if outcome != "accepted":
                if outcome == "unseen":
                    self._out.append(self.factory.shown(suggestion_id, index))
                self._remember(suggestion_id, "accepted")
                self._out.append(self.factory.accepted(suggestion_id, index, inserted))
            return self._take()
        if 0 <= index < len(offer.candidates):
            offer.candidate = index
        if not tracked or self._in_place(offer):
            if tracked:
                self._leave(offer)
            self._settle_accepted(offer, now)
        else:
            self._report_accept(offer)
        return self._take()

    def dismiss(self, target: str | None, now: float) -> tuple[bool, list[Event]]:
        """Escape: the suggestion on screen (``target`` may name its id or its document)
        was dismissed."""
        offer = self._live
        if offer is None or (target is not None and target not in (offer.suggestion_id, offer.uri)):
            return False, []
        self._leave(offer)
        self._end(offer, "escaped", now)
        return True, self._take()

    # ---- time --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do next."""
        deadlines: list[float] = []
        if self._live is not None and not self._live.shown:
            deadlines.append(self._live.delivered_at + self.timings.shown_delay)
        if self._pending is not None and self._pending.deadline is not None:
            deadlines.append(self._pending.deadline)
        deadlines.extend(d for w in self._retention if (d := w.next_due()) is not None)
        deadlines.extend(r.last_activity + self.timings.rewrite_idle for r in self._rewrites)
        return min(deadlines) if deadlines else None

    def tick(self, now: float) -> list[Event]:
        """Emit what is due at ``now``."""
        offer = self._live
        if (
            offer is not None
            and not offer.shown
            and now >= offer.delivered_at + self.timings.shown_delay
        ):
            offer.shown = True
            self._out.append(self.factory.shown(offer.suggestion_id, offer.candidate))
        pending = self._pending
        if pending is not None and pending.deadline is not None and now >= pending.deadline:
            self._pending = None
            self._end(pending.offer, "moved_away", now)
        for watch in list(self._retention):
            doc = self.documents.get(watch.uri)
            for label in watch.pop_due(now):
                if doc is not None:
                    self._snapshot(watch, label, doc)
            if watch.finished:
                self._retention.remove(watch)
        for rewrite in list(self._rewrites):
            if now >= rewrite.last_activity + self.timings.rewrite_idle:
                self._finish_rewrite(rewrite)
        return self._take()

    # ---- internals ---------------------------------------------------------------------

    def _take(self) -> list[Event]:
        out, self._out = self._out, []
        return out

    def _leave(self, offer: Offer) -> None:
        """``offer`` stops following the document: remember how much of it was typed."""
        if self._live is offer:
            self._live = None
        doc = self.documents.get(offer.uri)
        if doc is not None:
            offer.kept_chars = common_prefix(offer.typed(doc), offer.text)

    def _supersede(self, offer: Offer, ticket: int, now: float) -> None:
        if offer.accept_reported:
            self._settle_accepted(offer, now)
            return
        if not offer.shown:
            self._remember(offer.suggestion_id, "unseen")
            return
        doc = self.documents.get(offer.uri)
        line = doc.line_at(offer.region.end) if doc is not None else -1
        self._pending = _Pending(offer, offer.uri, line, ticket)

    def _remember(self, suggestion_id: str, outcome: str) -> None:
        self._recent[suggestion_id] = outcome
        self._recent.move_to_end(suggestion_id)
        while len(self._recent) > RECENT_OUTCOMES:
            self._recent.popitem(last=False)

    def _report_accept(self, offer: Offer) -> None:
        if offer.accept_reported:
            return
        offer.accept_reported = True
        if not offer.shown:
            offer.shown = True
            self._out.append(self.factory.shown(offer.suggestion_id, offer.candidate))
        self._out.append(self.factory.accepted(offer.suggestion_id, offer.candidate, offer.text))
        self._remember(offer.suggestion_id, "accepted")

    def _in_place(self, offer: Offer) -> bool:
        """Whether the document holds the offer's candidate where it was offered."""
        doc = self.documents.get(offer.uri)
        start = offer.region.start
        return doc is not None and doc.text[start : start + len(offer.text)] == offer.text

    def _settle_accepted(self, offer: Offer, now: float) -> None:
        """An accepted offer stops being followed: watch its retention when its text is
        in place."""
        self._accepted(offer, now, track=self._in_place(offer))

    def _accepted(self, offer: Offer, now: float, *, track: bool = True) -> None:
        self._report_accept(offer)
        if not track:
            return
        start = offer.region.start
        self._add_retention(
            RetentionWatch.start(
                suggestion_id=offer.suggestion_id,
                candidate_index=offer.candidate,
                uri=offer.uri,
                accepted_text=offer.text,
                start=start,
                end=start + len(offer.text),
                now=now,
                delays=self.timings.checkpoints,
            ),
        )

    def _end(self, offer: Offer, reason: DismissReason, now: float) -> None:
        if offer.accept_reported:
            self._settle_accepted(offer, now)
            return
        self._remember(offer.suggestion_id, "dismissed")
        if not offer.shown:
            if reason != "escaped":
                return
            offer.shown = True
            self._out.append(self.factory.shown(offer.suggestion_id, offer.candidate))
        sid, index = offer.suggestion_id, offer.candidate
        kept = offer.text[: offer.kept_chars]
        if kept.strip():
            self._out.append(self.factory.partially_accepted(sid, index, len(kept), kept))
        shown_ms = (now - offer.delivered_at) * 1000.0
        self._out.append(self.factory.dismissed(sid, index, reason, shown_ms))
        if reason in ("typed_over", "escaped") and offer.uri in self.documents:
            self._add_rewrite(
                RewriteWatch.start(
                    suggestion_id=sid,
                    candidate_index=index,
                    uri=offer.uri,
                    suggestion_text=offer.text,
                    start=offer.region.start,
                    end=offer.region.end,
                    now=now,
                ),
            )

    def _add_retention(self, watch: RetentionWatch) -> None:
        same_doc = [w for w in self._retention if w.uri == watch.uri]
        if len(same_doc) >= MAX_WATCHES_PER_DOCUMENT:
            self._retention.remove(same_doc[0])
        self._retention.append(watch)

    def _add_rewrite(self, watch: RewriteWatch) -> None:
        same_doc = [w for w in self._rewrites if w.uri == watch.uri]
        if len(same_doc) >= MAX_WATCHES_PER_DOCUMENT:
            self._finish_rewrite(same_doc[0])
        self._rewrites.append(watch)

    def _snapshot(self, watch: RetentionWatch, checkpoint: Checkpoint, doc: Lines) -> None:
        snap = watch.snapshot(checkpoint, doc.text)
        self._out.append(
            self.factory.retained(
                watch.suggestion_id,
                watch.candidate_index,
                snap.checkpoint,
                snap.similarity,
                snap.text,
            )
        )

    def _finish_rewrite(self, rewrite: RewriteWatch) -> None:
        if rewrite in self._rewrites:
            self._rewrites.remove(rewrite)
        doc = self.documents.get(rewrite.uri)
        text = rewrite.result(doc.text) if doc is not None else None
        if text is not None:
            self._out.append(
                self.factory.rewritten(rewrite.suggestion_id, rewrite.candidate_index, text)
            )
