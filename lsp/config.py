"""The language server's configuration: settings (environment) overridden by the
client's ``initializationOptions``.

``initializationOptions`` keys are camelCase: ``serverUrl``, ``token``, ``adminToken``, ``user``,
``enabled``, ``mode``, ``maxTokens``, ``candidates``, ``debounce``, ``connectTimeout``,
``requestTimeout``, ``maxPrefixChars``, ``maxSuffixChars``, ``shownDelay``,
``retentionCheckpoints`` (four numbers) and ``rewriteIdle``; times are in seconds. An
invalid value is ignored (with a warning) and the setting's value is kept.

Two tokens, each sent to the configured service only: ``token`` (else ``PREFLOOP_TOKEN``),
the developer's own, on every request; ``adminToken`` (else ``PREFLOOP_ADMIN_TOKEN`` or the
``$PREFLOOP_HOME/admin-token`` a service on the same machine and home generated), on
``/admin`` routes only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from prefloop.admin import existing_admin_token
from prefloop.settings import Settings

from .signals import SignalTimings

OPTION_FIELDS: dict[str, str] = {
    "serverUrl": "server_url",
    "user": "user",
    "mode": "lsp_mode",
    "maxTokens": "lsp_max_tokens",
    "candidates": "lsp_candidates",
    "debounce": "lsp_debounce",
    "connectTimeout": "lsp_connect_timeout",
    "requestTimeout": "lsp_request_timeout",
    "maxPrefixChars": "lsp_max_prefix_chars",
    "maxSuffixChars": "lsp_max_suffix_chars",
    "shownDelay": "lsp_shown_delay",
    "retentionCheckpoints": "lsp_retention_checkpoints",
    "rewriteIdle": "lsp_rewrite_idle",
}
"""initializationOptions keys that override a setting, and the setting they override."""

TOKEN_OPTIONS = ("token", "adminToken")
"""initializationOptions keys that carry a bearer token (the developer's, an admin's)."""


@dataclass(frozen=True)
class LspConfig:
    """The settings, the tokens given in ``initializationOptions`` and the on/off switch."""

    settings: Settings
    token: str | None = None
    """The developer's token from ``initializationOptions.token``; see :attr:`user_token`."""
    enabled: bool = True
    admin_token: str | None = None
    """An admin's token from ``initializationOptions.adminToken``; see :attr:`admin_bearer`."""

    @property
    def user_token(self) -> str | None:
        """The token sent with every request: ``initializationOptions.token``, else
        ``PREFLOOP_TOKEN``; None: requests carry none."""
        if self.token:
            return self.token
        secret = self.settings.token
        value = secret.get_secret_value().strip() if secret is not None else ""
        return value or None

    @property
    def admin_bearer(self) -> str | None:
        """The token sent on ``/admin`` routes: ``initializationOptions.adminToken``, else
        ``PREFLOOP_ADMIN_TOKEN`` or this home's admin-token file, else :attr:`user_token`
        (an admin's own user token works there too)."""
        return self.admin_token or existing_admin_token(self.settings) or self.user_token

    @property
    def timings(self) -> SignalTimings:
        s = self.settings
        return SignalTimings(
            shown_delay=s.lsp_shown_delay,
            checkpoints=tuple(s.lsp_retention_checkpoints),
            rewrite_idle=s.lsp_rewrite_idle,
        )

    def with_options(self, options: Any) -> tuple[LspConfig, list[str]]:
        """This configuration with ``initializationOptions`` applied, and the warnings
        about options that were ignored."""
        if options is None:
            return self, []
        if not isinstance(options, dict):
            return self, ["initializationOptions is not an object; ignored"]
        warnings: list[str] = []
        overrides: dict[str, Any] = {}
        for key, value in options.items():
            if key in OPTION_FIELDS:
                overrides[OPTION_FIELDS[key]] = value
            elif key not in (*TOKEN_OPTIONS, "enabled"):
                warnings.append(f"unknown initializationOptions key {key!r}; ignored")
        base = self.settings.model_dump()
        settings = self.settings
        while True:
            try:
                settings = Settings(**{**base, **overrides})
                break
            except ValidationError as exc:
                bad = {str(err["loc"][0]) for err in exc.errors() if err.get("loc")}
                bad &= set(overrides)
                if not bad:
                    break
                for name in sorted(bad):
                    key = next(k for k, f in OPTION_FIELDS.items() if f == name)
                    warnings.append(f"invalid initializationOptions.{key}; ignored")
                    overrides.pop(name)
        tokens: dict[str, str | None] = {}
        for key in TOKEN_OPTIONS:
            value = options.get(key)
            if value is not None and not isinstance(value, str):
                warnings.append(f"invalid initializationOptions.{key}; ignored")
                value = None
            tokens[key] = value.strip() if value else None
        enabled = options.get("enabled", self.enabled)
        if not isinstance(enabled, bool):
            warnings.append("invalid initializationOptions.enabled; ignored")
            enabled = self.enabled
        return replace(
            self,
            settings=settings,
            token=tokens["token"] or self.token,
            admin_token=tokens["adminToken"] or self.admin_token,
            enabled=enabled,
        ), warnings
