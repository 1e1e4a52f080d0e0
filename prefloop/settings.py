"""Settings for every prefloop process.

This is the only module that reads the environment. Every field can be set as
``PREFLOOP_<FIELD>`` (for example ``PREFLOOP_PORT=8088``); tests build a ``Settings``
directly instead. ``prefloop serve --help`` and the README list them too.
"""

from __future__ import annotations

import getpass
import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_MODEL = "embedded"
"""The model setting's value that selects the embedded SmolLM2-135M-Instruct."""

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
"""Host names that always reach this machine alone; allowed by default in every mode."""

AuthMode = Literal["local", "tokens"]
"""``local``: one person on loopback, no credential; ``tokens``: every caller has a token."""


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Settings(BaseSettings):
    """Configuration, field by field. Environment variables use the ``PREFLOOP_`` prefix."""

    model_config = SettingsConfigDict(env_prefix="PREFLOOP_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".prefloop",
        description="Data directory: the database, prepared models, adapters and the spool.",
    )
    host: str = Field(default="127.0.0.1", description="Address `prefloop serve` binds to.")
    port: int = Field(default=8765, ge=0, le=65535, description="Port `prefloop serve` binds to.")
    user: str = Field(
        default_factory=_default_user,
        description=(
            "The local user: recorded on suggestions and events when a request names none "
            "(local mode), and on what the CLI and the admin token ask for."
        ),
    )
    auth: Literal["auto", "local", "tokens"] = Field(
        default="auto",
        description=(
            "Who may call the service: `local` (no credential; the caller is the local user), "
            "`tokens` (team mode: every route but `/healthz` needs a user's bearer token), "
            "`auto` (`local` when bound to a loopback address, `tokens` otherwise)."
        ),
    )
    allowed_hosts: str = Field(
        default="",
        description=(
            "Comma-separated names a request's Host header may carry (`*.example.com` for a "
            "domain's hosts, `*` for any); empty: localhost, 127.0.0.1, ::1 and the bound host."
        ),
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate file: `prefloop serve` speaks HTTPS."
    )
    tls_key: Path | None = Field(default=None, description="PEM private key file of `tls_cert`.")

    engine: Literal["transformers", "vllm"] = Field(
        default="transformers",
        description="`transformers` runs the model in-process; `vllm` calls a vLLM server.",
    )
    model: str = Field(
        default=EMBEDDED_MODEL,
        description=(
            "`embedded` (SmolLM2-135M-Instruct, prepared on first use), a local Hugging Face "
            "model directory, or a hub id on machines that can reach one."
        ),
    )
    device: str = Field(default="auto", description="Torch device: `auto`, `cpu`, `cuda`, ...")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto", description="Weights dtype; `auto` is float32 on CPU, float16 on GPU."
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        description=(
            "CPU threads for the transformers engine; 0 leaves one core free for the rest of "
            "the service (and the editor): max(1, cores - 1)."
        ),
    )
    fim_template: str = Field(
        default="auto",
        description=(
            "Prompt format: `auto` (detected from the tokenizer's special tokens), a template "
            "name (`qwen`, `starcoder`, `codellama`, `deepseek`), or `prefix` (no FIM)."
        ),
    )
    max_prompt_tokens: int = Field(
        default=1536, ge=64, description="Token budget for prefix + suffix in a prompt."
    )
    default_max_tokens: int = Field(
        default=64, ge=1, le=2048, description="Tokens to generate when a request names none."
    )
    temperature: float = Field(
        default=0.6,
        ge=0.0,
        le=2.0,
        description="Sampling temperature for candidates after the first.",
    )
    max_candidates: int = Field(default=5, ge=1, le=16, description="Upper bound on `n`.")

    vllm_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the vLLM OpenAI-compatible server.",
    )
    vllm_model: str = Field(
        default="prefloop-base",
        description="Model name the vLLM server serves the base model under.",
    )
    vllm_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait on vLLM.")

    max_request_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Requests with a larger body are refused with 413 before parsing.",
    )
    max_events_per_batch: int = Field(
        default=5000, ge=1, description="Largest number of events accepted in one batch."
    )
    writer_batch_size: int = Field(
        default=2000, ge=1, description="Most rows the database writer commits in one transaction."
    )
    log_level: str = Field(default="info", description="Log level of the service.")

    server_url: str = Field(
        default="http://127.0.0.1:8765",
        description="The service `prefloop lsp` talks to (`initializationOptions.serverUrl`).",
    )
    lsp_debounce: float = Field(
        default=0.05, ge=0.0, le=5.0, description="Seconds `prefloop lsp` waits before asking."
    )
    lsp_connect_timeout: float = Field(
        default=0.5, gt=0.0, description="Seconds `prefloop lsp` waits to connect to the service."
    )
    lsp_request_timeout: float = Field(
        default=10.0, gt=0.0, description="Seconds `prefloop lsp` waits for suggestions."
    )
    lsp_mode: Literal["single_line", "multi_line"] = Field(
        default="multi_line", description="Suggestion mode `prefloop lsp` asks for."
    )
    lsp_max_tokens: int | None = Field(
        default=None, ge=1, le=2048, description="Tokens per suggestion (unset: the service's)."
    )
    lsp_candidates: int = Field(
        default=1, ge=1, le=16, description="Candidates `prefloop lsp` asks for per request."
    )
    lsp_max_prefix_chars: int = Field(
        default=8000, ge=1, description="Most characters before the cursor `prefloop lsp` sends."
    )
    lsp_max_suffix_chars: int = Field(
        default=4000, ge=0, description="Most characters after the cursor `prefloop lsp` sends."
    )
    lsp_shown_delay: float = Field(
        default=0.25,
        ge=0.0,
        description="Seconds a suggestion must stay on screen, not superseded, to count as shown.",
    )
    lsp_retention_checkpoints: tuple[float, float, float, float] = Field(
        default=(30.0, 120.0, 300.0, 600.0),
        description="Seconds after acceptance of the `30s`, `2m`, `5m` and `10m` snapshots.",
    )
    lsp_rewrite_idle: float = Field(
        default=10.0,
        gt=0.0,
        description="Seconds without typing at a dismissed suggestion's place that end a rewrite.",
    )

    judge_backend: Literal["off", "engine", "openai"] = Field(
        default="engine",
        description=(
            "LLM judge of logged suggestions: `engine` (the serving model, while it is idle), "
            "`openai` (an OpenAI-compatible endpoint) or `off`."
        ),
    )
    judge_url: str = Field(
        default="http://127.0.0.1:8000/v1",
        description="Base URL of the OpenAI-compatible judge endpoint, ending in `/v1`.",
    )
    judge_api: Literal["chat", "completions"] = Field(
        default="chat", description="Endpoint API of the `openai` judge."
    )
    judge_model: str = Field(
        default="", description="Model the `openai` judge asks for (empty: the first listed)."
    )
    judge_api_key: SecretStr | None = Field(
        default=None, description="Bearer token of the `openai` judge endpoint."
    )
    judge_structured: bool = Field(
        default=True,
        description="Send the answer's JSON schema as `response_format` (`openai` judge).",
    )
    judge_rubric: str = Field(
        default="inline-v1",
        description="Rubric version (a file pair in server/judge/rubrics) or a `.json` path.",
    )
    judge_together: bool = Field(
        default=False,
        description="Judge all candidates of a suggestion in one prompt (shuffled).",
    )
    judge_max_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts per critique before it is recorded failed."
    )
    judge_timeout: float = Field(default=120.0, gt=0, description="Seconds per judge attempt.")
    judge_max_tokens: int = Field(
        default=256, ge=16, le=4096, description="Tokens a judge answer may take per candidate."
    )
    judge_context_chars: int = Field(
        default=3000, ge=200, description="Characters of code around the cursor a judge sees."
    )
    judge_poll_interval: float = Field(
        default=5.0, gt=0, description="Seconds between looks for suggestions to critique."
    )
    judge_idle_seconds: float = Field(
        default=2.0,
        ge=0,
        description="Seconds the serving engine must be idle before the `engine` judge uses it.",
    )
    judge_concurrency: int = Field(
        default=1, ge=1, le=64, description="Suggestions the judge critiques at once."
    )
    judge_checks: bool = Field(
        default=True,
        description="Run the verifiable checks (parse, undefined names, security smells).",
    )
    judge_pairwise: bool = Field(
        default=True,
        description=(
            "Break near ties with one pairwise comparison (both orders) of the best- and "
            "worst-scored candidates when they are closer than pairs_min_score_gap."
        ),
    )

    # --- registry and hot swap ---
    registry_keep: int = Field(
        default=5,
        ge=1,
        description=(
            "Model versions whose adapter files are kept for rollback; older adapter "
            "directories are deleted (the served and the previous version are always kept)."
        ),
    )
    swap_poll_seconds: float = Field(
        default=2.0,
        ge=0.0,
        description=(
            "Seconds between the service's looks at the registry for a newly promoted "
            "version (0: only at start-up and on `POST /admin/reload`)."
        ),
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token of the `/admin` API. Unset: a random token generated once into "
            "`$PREFLOOP_HOME/admin-token` (mode 0600), read by the CLI and the service."
        ),
    )
    token: SecretStr | None = Field(
        default=None,
        description=(
            "The language server's own bearer token (a user's token from `prefloop users add`, "
            "for a service in team mode): sent with every request to the service, which takes "
            "the user from it. Unset: requests carry no token (local mode)."
        ),
    )

    # --- training ---
    train_schedule: str = Field(
        default="off",
        description=(
            "When `prefloop serve` retrains: `off`, `interval:<n><s|m|h|d>` (e.g. `interval:6h`) "
            "or a five-field cron expression (`cron:0 3 * * *` or just `0 3 * * *`)."
        ),
    )
    train_adapters: Literal["shared", "per_user"] = Field(
        default="shared",
        description=(
            "`shared`: one adapter trained on every user's pairs, served to all. `per_user`: "
            "each run trains, gates and promotes one adapter per user with enough pairs (their "
            "own train and held-out pairs); a user is served their own promoted version, else "
            "the shared one (transformers engine only)."
        ),
    )
    train_min_new_pairs: int = Field(
        default=50,
        ge=1,
        description="Scheduled runs start only once this many pairs arrived since the last run.",
    )
    train_auto_promote: bool | None = Field(
        default=None,
        description=(
            "Promote a candidate that passes the evaluation gate (`false`: only register it, "
            "for an admin to promote). Unset: on in local mode, off in team mode (and in a "
            "home with users' tokens), where one user's forged feedback must not reach "
            "everyone without an admin's look."
        ),
    )
    train_max_user_share: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description=(
            "Shared adapter: the most of a run's train pairs, and of its held-out pairs, that "
            "one user's pairs may make up when several users have pairs; each user keeps "
            "their newest pairs up to that share (1: no cap)."
        ),
    )
    train_misfire_grace: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds a missed scheduled run may start late; missed runs are coalesced.",
    )
    train_gate_min_accuracy_gain: float = Field(
        default=0.0,
        ge=-1.0,
        le=1.0,
        description=(
            "Gate: the lower bound of the paired held-out accuracy gain (candidate − current, "
            "bootstrap interval) must reach this."
        ),
    )
    train_gate_min_margin_gain: float = Field(
        default=0.0,
        description=(
            "Gate: the lower bound of the paired held-out margin gain (candidate − current, "
            "bootstrap interval) must exceed this."
        ),
    )
    train_gate_min_heldout: int = Field(
        default=8,
        ge=1,
        description=(
            "Gate: fewest held-out pairs a decision may rest on; the floor is "
            "max(this, ceil(train_gate_heldout_share × the run's pairs)), and a run below it "
            "is refused."
        ),
    )
    train_gate_heldout_share: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Gate: the held-out floor grows with the data: at least this share of pairs.",
    )
    train_gate_confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1.0,
        description="Gate: confidence level of its intervals (Wilson and paired bootstrap).",
    )
    train_gate_bootstrap_samples: int = Field(
        default=2000,
        ge=100,
        le=100_000,
        description="Gate: resamples per bootstrap interval (seeded by the run's seed).",
    )
    train_gate_max_syntax_drop: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Gate: share of the parsed probes that may turn syntax-invalid regardless of the "
            "measured noise (the larger of the two tolerances applies)."
        ),
    )
    train_gate_max_degenerate_increase: int = Field(
        default=0,
        ge=0,
        description=(
            "Gate: more empty or repetitive probe completions allowed regardless of the "
            "measured noise (the larger of the two tolerances applies)."
        ),
    )
    train_gate_probe_noise_z: float = Field(
        default=2.0,
        ge=0.0,
        description=(
            "Gate: probe tolerances in counts are this many standard deviations of the probe "
            "set's measured flips between equivalent base-model runs (0: none tolerated)."
        ),
    )
    train_gate_probe_alpha: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description=(
            "Gate: more probe regressions than tolerated refuse a candidate only when the "
            "probes that changed went worse significantly more often than better (one-sided "
            "sign test p-value below this; 1: any regression beyond the tolerance refuses)."
        ),
    )
    train_gate_behaviour_contexts: int = Field(
        default=16,
        ge=0,
        description=(
            "Gate: held-out contexts on which both models' own suggestions are compared with "
            "what the developer kept (0: no behavioural check)."
        ),
    )
    train_gate_behaviour_max_tokens: int = Field(
        default=24, ge=1, le=512, description="Gate: tokens per behavioural-check suggestion."
    )
    train_gate_behaviour_min_gain: float = Field(
        default=0.0,
        description=(
            "Gate: the mean gain in normalised edit distance to the kept text (current − "
            "candidate) must exceed this."
        ),
    )
    train_gate_behaviour_tolerance: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description=(
            "Gate: the lower bound of that gain's bootstrap interval may lie at most this "
            "far below zero."
        ),
    )
    train_gate_latency_factor: float = Field(
        default=2.0,
        ge=1.0,
        description="Gate: the candidate's probe latency may be at most this times the current's.",
    )
    train_timeout: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="Seconds `prefloop retrain --wait` waits for a run before giving up waiting.",
    )

    # --- pairs ---
    pairs_min_score_gap: float = Field(
        default=2.0,
        gt=0,
        description="Judge-ranking pairs need this gap between the best and worst score (1-5).",
    )
    pairs_heldout_fraction: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Share of each user's prompt groups, newest first, held out from training.",
    )
    pairs_heldout_min: int = Field(
        default=8,
        ge=0,
        description=(
            "Hold out at least this many prompt groups of each user (but never more than half "
            "of the user's groups), when the share holds out fewer."
        ),
    )
    pairs_min_chars: int = Field(
        default=3,
        ge=1,
        description="Pairs whose chosen text is shorter than this (or rejected blank) are dropped.",
    )
    pairs_near_duplicate: float = Field(
        default=0.95,
        gt=0.0,
        le=1.0,
        description="Chosen/rejected similarity (difflib ratio) at which a pair is dropped.",
    )
    pairs_retained_similarity: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="An accepted candidate counts as retained from this similarity on.",
    )
    pairs_check_fail_score: int = Field(
        default=1,
        ge=0,
        le=5,
        description="A chosen text whose verifiable check scores at or below this is dropped.",
    )
    pairs_check_bandit: bool = Field(
        default=False,
        description="Run bandit on chosen Python texts too (slow; the pattern rules always run).",
    )
    pairs_check_context_lines: int = Field(
        default=30,
        ge=1,
        description="Lines before the cursor the pair build's checks read (half as many after).",
    )
    pairs_check_workers: int = Field(
        default=1,
        ge=0,
        le=64,
        description=(
            "Processes for the pair build's checks: 1 runs them in the build's process, "
            "0 one per core (at most 4); worth it only with idle cores."
        ),
    )
    pairs_weight_edit: float = Field(
        default=1.0, ge=0, description="Weight of edit-after-accept pairs."
    )
    pairs_weight_rewrite: float = Field(
        default=1.0, ge=0, description="Weight of rewrite-after-dismiss pairs."
    )
    pairs_weight_alternative: float = Field(
        default=0.7, ge=0, description="Weight of accepted-vs-alternative pairs."
    )
    pairs_weight_judge: float = Field(
        default=0.5, ge=0, description="Weight of judge-ranking pairs."
    )

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: object) -> object:
        if isinstance(value, str):
            return Path(value).expanduser()
        if isinstance(value, Path):
            return value.expanduser()
        return value

    @field_validator("lsp_retention_checkpoints")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(v < 0 for v in value) or list(value) != sorted(value):
            raise ValueError("retention checkpoints must be non-negative and increasing")
        return value

    @property
    def auth_mode(self) -> AuthMode:
        """The mode ``auth`` resolves to for the bound host."""
        if self.auth == "auto":
            return "local" if is_loopback(self.host) else "tokens"
        return self.auth

    @property
    def auto_promote(self) -> bool:
        """Whether a run promotes a candidate that passed the gate: ``train_auto_promote``
        when set, else on in local mode and off in team mode (:attr:`auth_mode`)."""
        if self.train_auto_promote is not None:
            return self.train_auto_promote
        return self.auth_mode == "local"

    @property
    def allowed_host_names(self) -> list[str]:
        """The Host header values the service answers (lower case, without ports)."""
        given = [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]
        if given:
            return given
        names = list(LOOPBACK_NAMES)
        bound = self.host.strip().strip("[]").lower()
        if bound and bound not in names:
            names.append(bound)
        return names

    @property
    def db_path(self) -> Path:
        return self.home / "prefloop.db"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
