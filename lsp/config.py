"""The language server's configuration: settings (environment) overridden by the
client's ``initializationOptions``.

``initializationOptions`` keys are camelCase: ``serverUrl``, ``token``, ``user``,
``enabled``, ``mode``, ``maxTokens``, ``candidates``, ``debounce``, ``connectTimeout``,
``requestTimeout``, ``maxPrefixChars``, ``maxSuffixChars``, ``shownDelay``,
``retentionCheckpoints`` (four numbers) and ``rewriteIdle``; times are in seconds. An
invalid value is ignored (with a warning) and the setting's value is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

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


@dataclass(frozen=True)
class LspConfig:
    settings: Settings
    token: str | None = None
    enabled: bool = True

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
            elif key not in ("token", "enabled"):
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
        token = options.get("token")
        if token is not None and not isinstance(token, str):
            warnings.append("invalid initializationOptions.token; ignored")
            token = None
        enabled = options.get("enabled", self.enabled)
        if not isinstance(enabled, bool):
            warnings.append("invalid initializationOptions.enabled; ignored")
            enabled = self.enabled
        return replace(
            self, settings=settings, token=token or self.token, enabled=enabled
        ), warnings
