"""Wire types: every message that crosses a process boundary, defined once.

Directions:

* ``SuggestionRequest``: editor side (language server) → service, ``POST /v1/suggestions``.
* ``SuggestionResponse``: service → editor side.
* ``Event`` (one of the ``*Event`` models): editor side → service, inside an ``EventBatch``
  posted to ``POST /v1/events``; the service answers with an ``EventsResult``.
* ``ErrorBody``: service → any client, for every 4xx/5xx answer. It never carries the
  code the user sent.

The VS Code extension mirrors the parts it needs in ``extension/src/protocol.ts``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel
from typing_extensions import TypedDict

Mode = Literal["single_line", "multi_line"]

# Upper bounds that keep one request from exhausting memory; the model's own token budget
# is applied later by cutting the far ends, not by refusing the request.
MAX_TEXT_CHARS = 4 * 1024 * 1024
MAX_ID_CHARS = 128


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Wire):
    """A zero-based cursor position, as in LSP."""

    line: int = Field(ge=0)
    character: int = Field(ge=0)


class SuggestionRequest(_Wire):
    """Ask for inline suggestions at the cursor."""

    prefix: str = Field(max_length=MAX_TEXT_CHARS, description="Document text before the cursor.")
    suffix: str = Field(
        default="", max_length=MAX_TEXT_CHARS, description="Document text after the cursor."
    )
    language: str = Field(
        default="plaintext", max_length=64, description="LSP language id, e.g. `python`."
    )
    path: str = Field(
        default="", max_length=1024, description="File path relative to the workspace root."
    )
    cursor: Position | None = None
    mode: Mode = "multi_line"
    max_tokens: int | None = Field(default=None, ge=1, le=2048)
    n: int = Field(default=1, ge=1, le=16, description="Number of candidates to generate.")
    client_request_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    session_id: str | None = Field(
        default=None,
        max_length=MAX_ID_CHARS,
        description="Editor session; a newer request from it cancels the older one.",
    )
    user: str | None = Field(default=None, max_length=MAX_ID_CHARS)


class Candidate(_Wire):
    index: int
    text: str


class Timings(_Wire):
    """Milliseconds spent on the request, measured in the service."""

    prompt_ms: float
    generate_ms: float
    total_ms: float


class SuggestionResponse(_Wire):
    suggestion_id: str
    candidates: list[Candidate]
    model_version: str
    timings: Timings
    client_request_id: str | None = None


# ---- feedback events -------------------------------------------------------------------

DismissReason = Literal["typed_over", "moved_away", "escaped", "closed", "replaced_by_newer"]
Checkpoint = Literal["30s", "2m", "5m", "10m", "save", "close"]
EventKind = Literal["shown", "accepted", "partially_accepted", "dismissed", "retained", "rewritten"]
EVENT_KINDS: tuple[str, ...] = (
    "shown",
    "accepted",
    "partially_accepted",
    "dismissed",
    "retained",
    "rewritten",
)


class _EventBase(_Wire):
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Client-generated id.")
    suggestion_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    candidate_index: int = Field(default=0, ge=0, le=15)
    ts: float | None = Field(default=None, description="Client time, seconds since the epoch.")
    user: str | None = Field(default=None, max_length=MAX_ID_CHARS)


class ShownEvent(_EventBase):
    kind: Literal["shown"]


class AcceptedEvent(_EventBase):
    kind: Literal["accepted"]
    text: str = Field(default="", max_length=MAX_TEXT_CHARS, description="The accepted text.")


class PartiallyAcceptedEvent(_EventBase):
    kind: Literal["partially_accepted"]
    accepted_chars: int = Field(ge=1)
    text: str = Field(default="", max_length=MAX_TEXT_CHARS)


class DismissedEvent(_EventBase):
    kind: Literal["dismissed"]
    reason: DismissReason
    shown_ms: float | None = Field(default=None, ge=0)


class RetainedEvent(_EventBase):
    kind: Literal["retained"]
    checkpoint: Checkpoint
    similarity: float = Field(ge=0.0, le=1.0)
    text: str = Field(default="", max_length=MAX_TEXT_CHARS, description="Current tracked text.")


class RewrittenEvent(_EventBase):
    kind: Literal["rewritten"]
    text: str = Field(max_length=MAX_TEXT_CHARS, description="What the user wrote instead.")


Event = Annotated[
    ShownEvent
    | AcceptedEvent
    | PartiallyAcceptedEvent
    | DismissedEvent
    | RetainedEvent
    | RewrittenEvent,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class EventBatch(BaseModel):
    """The body of ``POST /v1/events``. Events are validated one by one by the service,
    so a malformed event refuses only itself."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, object]] = Field(max_length=100_000)


class RefusedEvent(_Wire):
    index: int = Field(description="Position of the event in the posted batch.")
    id: str | None = Field(description="The event's id, when it had a usable one.")
    error: str = Field(description="Why it was refused; never contains the event's text.")


class EventsResult(_Wire):
    stored: list[str] = Field(description="Ids stored by this request.")
    duplicates: list[str] = Field(description="Ids already stored earlier; nothing changed.")
    refused: list[RefusedEvent]


class ErrorBody(_Wire):
    error: str
    detail: list[str] = Field(default_factory=list)


# ---- training ---------------------------------------------------------------------------
#
# * ``RetrainRequest``: admin → service, the optional body of ``POST /admin/retrain``; the
#   service answers ``RetrainAccepted`` (202) or an ``ErrorBody`` whose refusal is one of
#   ``TrainingRefusal``.
# * ``TrainingRun``: one row of ``training_runs``, written by the training process, read by
#   the service (``GET /admin/runs/{id}``, ``RunList`` for ``GET /admin/runs``) and the CLI.
# * ``GateResult``: training process → the run row's ``gate`` column (as JSON).

TrainingRefusal = Literal["run_in_progress", "not_enough_pairs", "invalid_config", "unknown_run"]
"""Why a training request was refused: another run holds the lock; too few (new) pairs;
a training setting is unknown or out of range; no run has the asked-for id."""

RunStatus = Literal["queued", "running", "succeeded", "rejected", "failed"]


class RetrainRequest(_Wire):
    """Body of ``POST /admin/retrain`` (optional)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    force: bool = Field(default=False, description="Train even with few new pairs.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Training settings overriding the defaults."
    )


class RetrainAccepted(_Wire):
    """A training run was started: its id; follow it with ``GET /admin/runs/{run_id}``."""

    run_id: str
    status: RunStatus = "queued"


class TrainingRun(TypedDict):
    """A training run as recorded; the JSON columns decoded (``None`` while unset)."""

    id: str
    created_at: str
    user: str | None
    language: str | None
    model_version: str | None
    status: RunStatus
    started_at: str | None
    finished_at: str | None
    config: dict[str, Any] | None
    """The training configuration, every field (``TrainConfig``)."""
    data: dict[str, Any] | None
    """Pairs available and the last pair build when queued; what was trained and judged on
    (with the shared adapter: the pairs of each user, ``by_user``, and what the cap on one
    user's share left out, ``user_share_cap``); what became of the candidate
    (``promotion``: promoted, or why a passing one awaits an admin)."""
    metrics: dict[str, Any] | None
    """Step, total steps and loss while training; steps, losses and step time after."""
    gate: dict[str, Any] | None
    """The evaluation gate's ``GateResult``."""
    error: str | None
    candidate_version: str | None
    reason: str | None
    parent_version: str | None
    reference_model: str | None
    pid: int | None
    log_path: str | None
    users: dict[str, Any] | None
    """With ``train_adapters = per_user``: each user's outcome (skipped and why, or the
    candidate, the version it was judged against, the gate's verdict and reasons)."""
    requested_by: str | None
    """Who asked for the run: the admin's user (``POST /admin/retrain``), the local user
    (``prefloop retrain``); None for a scheduled run."""


class RunList(_Wire):
    """Answer of ``GET /admin/runs``: runs, newest first."""

    runs: list[TrainingRun]


class PairCounts(TypedDict):
    """Pairs a run could train on: train and held-out pairs in the store, and the pairs
    newer than the data of the last finished run."""

    train: int
    heldout: int
    new: int


class GateThresholds(_Wire):
    """What a candidate must reach to pass the gate (the ``train_gate_*`` settings).

    The defaults here are the strictest gate (tests build on them); the settings' defaults
    are documented in the README.
    """

    min_accuracy_gain: float = 0.0
    min_margin_gain: float = 0.0
    min_heldout: int = 1
    max_syntax_drop: float = 0.0
    max_degenerate_increase: int = 0
    latency_factor: float = 2.0
    heldout_share: float = Field(
        default=0.0,
        description="With min_heldout, the held-out floor: max(min_heldout, ceil(share × pairs)).",
    )
    confidence: float = Field(default=0.95, description="Confidence level of every interval.")
    bootstrap_samples: int = Field(default=2000, description="Resamples per bootstrap interval.")
    probe_noise_z: float = Field(
        default=0.0,
        description="Probe tolerances: this many standard deviations of the measured noise.",
    )
    probe_alpha: float = Field(
        default=1.0,
        description=(
            "Probe changes beyond the tolerance refuse a candidate only when a sign test on "
            "the probes that changed (worse against better) gives a p-value below this."
        ),
    )
    behaviour_min_gain: float = Field(
        default=0.0,
        description="Behaviour: the mean edit-distance gain must exceed this.",
    )
    behaviour_tolerance: float = Field(
        default=0.0,
        description="Behaviour: the gain's interval may reach this far below zero.",
    )


class Interval(_Wire):
    """A point estimate with its confidence interval [low, high] at ``confidence``."""

    estimate: float
    low: float
    high: float
    confidence: float


class GateFinding(_Wire):
    """One figure the gate decided on: its value, what it had to reach, and the noise it
    was judged against (an interval, or a tolerance in counts)."""

    figure: str = Field(description="What was measured, e.g. `heldout_margin_gain`.")
    passed: bool
    value: float = Field(description="The figure as measured (the interval's bound if it decides).")
    required: float = Field(description="The value it had to reach or stay within.")
    shortfall: float = Field(description="How far it missed the requirement (0 when passed).")
    noise: str = Field(description="What it was judged against: its interval or tolerance.")
    detail: str = ""


class PreferenceFigures(_Wire):
    """One model on the held-out pairs: accuracy is the share of pairs whose chosen
    completion it rates above the rejected one, margin the mean log-probability gap.
    ``accuracy_interval`` is the accuracy's Wilson interval (absent in older runs)."""

    pairs: int
    accuracy: float
    margin: float
    accuracy_interval: Interval | None = None


class UserPreferenceFigures(_Wire):
    """The candidate and the current version on the held-out pairs of one user (the user
    of the pair's suggestion; "" when not known)."""

    user: str
    candidate: PreferenceFigures
    current: PreferenceFigures


class PreferenceVerdict(_Wire):
    """The preference half of the gate: the candidate against the current version, with
    the paired differences (candidate − current, per pair) and their bootstrap intervals.
    ``by_user`` reports the figures on each user's held-out pairs (it decides nothing;
    absent in older runs)."""

    passed: bool
    reasons: list[str]
    candidate: PreferenceFigures
    current: PreferenceFigures
    margin_gain: float
    accuracy_gain: float
    floor: int | None = Field(default=None, description="Fewest held-out pairs allowed.")
    margin_gain_interval: Interval | None = None
    accuracy_gain_interval: Interval | None = None
    findings: list[GateFinding] = Field(default_factory=list)
    by_user: list[UserPreferenceFigures] | None = Field(
        default=None, description="Per user, by user name; None when the users were not known."
    )


class ProbeTotals(_Wire):
    """One model on the probe set: probes run, share of the parsed probes (Python with
    ``ast``, others with tree-sitter) whose completion parses, empty or repetitive
    completions, seconds spent. ``syntax_checked``/``syntax_valid`` are the counts
    behind the rate (absent in older runs); ``functional_checked``/``functional_passed``
    count the probes with tests and those whose tests passed (absent in older runs)."""

    probes: int
    syntax_valid_rate: float
    degenerate: int
    seconds: float
    syntax_checked: int | None = None
    syntax_valid: int | None = None
    functional_checked: int | None = None
    functional_passed: int | None = None


class ProbeSample(_Wire):
    """One probe's completion (model output on fixed probe code, never user code)."""

    id: str
    completion: str


class ProbeSamples(_Wire):
    candidate: list[ProbeSample]
    current: list[ProbeSample]


class ProbeTolerance(_Wire):
    """The probe half's tolerances in counts and the noise they come from: the probe
    set's measured flips between two equivalent runs of the base model, scaled to the
    probes run, times ``probe_noise_z`` standard deviations (see ``trainer/gate.py``)."""

    syntax_drop: int
    degenerate_rise: int
    measured: str = Field(description="How the noise was measured, from the probe set.")
    functional_drop: int | None = None


class ProbeVerdict(_Wire):
    """The probe half of the gate: the candidate must not regress against the current."""

    passed: bool
    reasons: list[str]
    candidate: ProbeTotals
    current: ProbeTotals
    samples: ProbeSamples | None = None
    tolerance: ProbeTolerance | None = None
    findings: list[GateFinding] = Field(default_factory=list)


class BehaviourFigures(_Wire):
    """One model's own suggestions on the held-out contexts: mean normalised edit distance
    to the text the developer kept (chosen) and to the one they did not (rejected), and
    how many of its suggestions are closer to the chosen than to the rejected text."""

    contexts: int
    distance_to_chosen: float
    distance_to_rejected: float
    closer_to_chosen: int


class BehaviourVerdict(_Wire):
    """The behavioural half of the gate: per context, gain = the current version's
    distance to the chosen text − the candidate's (positive: the candidate is closer to
    what the developer kept), its mean with a bootstrap interval, and how many contexts
    moved closer, further or not at all. The suggestions themselves are not stored (they
    are written on the developer's code)."""

    passed: bool
    reasons: list[str]
    candidate: BehaviourFigures
    current: BehaviourFigures
    gain: Interval
    closer: int
    further: int
    unchanged: int
    findings: list[GateFinding] = Field(default_factory=list)


class GateVerdict(_Wire):
    """The gate's halves and the decision: passed when every half that ran passed."""

    passed: bool
    reasons: list[str]
    preferences: PreferenceVerdict
    probes: ProbeVerdict
    behaviour: BehaviourVerdict | None = None


class GateResult(GateVerdict):
    """The gate as run on a candidate adapter, stored with the training run."""

    probe_set: str
    thresholds: GateThresholds
    current: str = Field(description="The version compared against (`base` or its id).")
    seconds: float

    def stored(self) -> dict[str, Any]:
        """The result as recorded in the run's ``gate`` column."""
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def findings(self) -> list[GateFinding]:
        """Every figure decided on, preferences first."""
        out = [*self.preferences.findings, *self.probes.findings]
        if self.behaviour is not None:
            out += self.behaviour.findings
        return out


# ---- language server status and admin API answers --------------------------------------
#
# * ``StatusAnswer``: language server → editor, the result of the ``prefloop.status``
#   command (``workspace/executeCommand``); its keys are camelCase, as LSP's are.
# * ``ModelsAnswer``: service → admin client, ``GET /admin/models``.
# * ``ServingAnswer``: service → admin client, ``POST /admin/reload``, ``/admin/promote``
#   and ``/admin/rollback``.
# * ``AdminRefusal``: why ``/admin/promote`` or ``/admin/rollback`` refused; the client
#   receives the status code of ``ADMIN_REFUSAL_STATUS`` and an ``ErrorBody``.


class _CamelWire(_Wire):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


ServiceState = Literal["unknown", "connected", "unreachable"]


class TodayCounts(_CamelWire):
    """The suggestions of the current local day, counted by this language server from the
    events it sent."""

    date: str = Field(description="The day, ISO format.")
    shown: int = Field(ge=0)
    accepted: int = Field(ge=0)
    partially_accepted: int = Field(ge=0)
    dismissed: int = Field(ge=0)
    acceptance_rate: float | None = Field(
        ge=0.0, le=1.0, description="accepted / shown; None before anything was shown."
    )


class StatusAnswer(_CamelWire):
    """The language server's state, the service it talks to, and today's counts."""

    connected: bool = Field(description="The last request to the service was answered.")
    state: ServiceState
    server_url: str
    model_version: str | None = Field(description="The version the service last served.")
    service_status: str | None = Field(description="The `status` of the service's /healthz.")
    last_error: str | None
    auth_error: str | None = Field(
        default=None,
        description="Why the service refuses the language server's token (401 or 403 on "
        "suggestions or events); None while it takes it.",
    )
    enabled: bool = Field(description="Suggestions are on (`prefloop.toggle`).")
    today: TodayCounts
    spooled_events: int | None = Field(
        ge=0, description="Events waiting on disk for the service; None before `initialize`."
    )
    version: str = Field(description="The language server's prefloop version.")


class VersionEntry(_Wire):
    """One registered model version."""

    id: str = Field(description="`vN`.")
    status: str = Field(description="candidate, promoted, retired or rejected.")
    parent: str = Field(description="The version it was trained from (`base` for the first).")
    created_at: str
    promoted_at: str | None
    base_model: str
    run_id: str | None = Field(description="The training run that made it.")
    metrics: dict[str, Any]
    files: bool = Field(description="Its adapter files are still on disk (not pruned).")
    served: bool = Field(description="The engine serves it now (to everyone, or to its user).")
    user: str | None = Field(
        default=None, description="The one user it was trained for and is served to; None: shared."
    )


class ModelsAnswer(_Wire):
    served: str = Field(description="The version the engine serves (`base`: no adapter).")
    promoted: str = Field(description="The version the registry says to serve.")
    rollback_to: str | None = Field(
        description="What `/admin/rollback` would serve; None when `base` is promoted."
    )
    versions: list[VersionEntry] = Field(description="Newest first.")
    user_versions: dict[str, str] = Field(
        default_factory=dict,
        description="Each user with a promoted version of their own, and that version.",
    )


class SwapAnswer(_Wire):
    """One attempt of the service to change the served version."""

    from_version: str
    to_version: str
    at: str = Field(description="When it happened, ISO format, UTC.")
    seconds: float = Field(description="How long it took, waiting for generations included.")
    trigger: str = Field(description="start-up, reload, poll, promote or rollback.")
    error: str | None = Field(description="Why the engine refused the version; None: served.")
    load_seconds: float | None = Field(description="Of `seconds`, the engine's own switch.")


class ServingAnswer(_Wire):
    """What the service serves after it was asked to follow the registry."""

    model_version: str = Field(description="The version the engine serves now.")
    promoted: str = Field(description="The version the registry says to serve.")
    swap: SwapAnswer | None = Field(description="The swap this request made; None: no change.")
    error: str | None = Field(description="The swap's error, when the engine refused it.")
    user: str | None = Field(default=None, description="The user the request was about.")
    user_version: str | None = Field(
        default=None, description="The version that user is served now (theirs or the shared)."
    )


AdminRefusal = Literal["unknown_version", "not_promotable", "refused_by_engine", "invalid"]
ADMIN_REFUSAL_STATUS: dict[AdminRefusal, int] = {
    "unknown_version": 404,
    "not_promotable": 409,  # rejected, pruned, already promoted, nothing to roll back to
    "refused_by_engine": 422,  # the registry change was undone or the engine kept serving
    "invalid": 400,
}


# ---- users (admin API) -------------------------------------------------------------------

UserRole = Literal["developer", "admin"]


class UserInfo(_Wire):
    """A user of team mode as listed (never their token): service → admin,
    ``GET /admin/users``."""

    name: str
    role: UserRole
    active: bool = Field(description="They hold a live token (false once revoked).")
    created_at: str = Field(description="When their first token was issued.")
    token_created_at: str = Field(description="When their current (or last) token was issued.")
    last_used_at: str | None = Field(
        default=None, description="Last request with one of their tokens (to about a minute)."
    )
    revoked_at: str | None = None
    tokens: int = Field(description="Tokens issued to them so far (rotations included).")


class UserList(_Wire):
    """Answer of ``GET /admin/users``: every user, by name."""

    users: list[UserInfo]


class NewUser(_Wire):
    """Body of ``POST /admin/users``: admin → service."""

    name: str = Field(
        min_length=1,
        max_length=64,
        description="1-64 letters, digits, `.`, `_`, `@` or `-`, starting with a letter or digit.",
    )
    role: UserRole = "developer"


class IssuedToken(_Wire):
    """Answer of ``POST /admin/users`` (201) and ``POST /admin/users/{name}/rotate``: the
    user and their new token, shown this once (only its hash is kept)."""

    user: UserInfo
    token: str


class RevokedUser(_Wire):
    """Answer of ``DELETE /admin/users/{name}``: the user, now without a live token."""

    user: UserInfo
    revoked: int = Field(description="Live tokens that were revoked (normally 1).")


class PromotionEntry(_Wire):
    """One promotion or rollback of the registry's history (``GET /admin/promotions``)."""

    id: int
    created_at: str
    action: str
    from_version: str
    to_version: str
    reason: str | None = None
    for_user: str | None = Field(
        default=None, description="The user whose own version moved; None: the shared one."
    )
    requested_by: str | None = Field(
        default=None, description="Who asked for it; None: a run nobody asked for, or older."
    )


class PromotionList(_Wire):
    """Answer of ``GET /admin/promotions``: the history, newest first."""

    promotions: list[PromotionEntry]
