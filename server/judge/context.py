"""What a judge sees of a logged suggestion: the code around the cursor and the candidates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PREFIX_SHARE = 0.75


@dataclass(frozen=True)
class JudgeContext:
    suggestion_id: str
    language: str
    path: str
    prefix: str
    suffix: str
    candidates: tuple[str, ...]
    user: str | None = None
    model_version: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JudgeContext:
        """From a ``suggestions`` row (its ``candidates`` JSON or an already decoded list)."""
        raw = row.get("candidates") or []
        items = json.loads(raw) if isinstance(raw, str) else raw
        ordered = sorted(items, key=lambda c: int(c.get("index", 0)))
        return cls(
            suggestion_id=str(row["id"]),
            language=str(row.get("language") or "plaintext"),
            path=str(row.get("path") or ""),
            prefix=str(row.get("prefix") or ""),
            suffix=str(row.get("suffix") or ""),
            candidates=tuple(str(c.get("text") or "") for c in ordered),
            user=row.get("user"),
            model_version=row.get("model_version"),
        )

    def window(self, max_chars: int) -> tuple[str, str]:
        """The end of the prefix and the start of the suffix, ``max_chars`` in all, cut at
        line boundaries (the prefix gets three quarters, and what the suffix leaves)."""
        suffix_budget = min(len(self.suffix), max_chars - int(max_chars * PREFIX_SHARE))
        prefix_budget = max_chars - suffix_budget
        return _tail(self.prefix, prefix_budget), _head(self.suffix, suffix_budget)


def _tail(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    cut = text[len(text) - budget :]
    newline = cut.find("\n")
    return cut[newline + 1 :] if 0 <= newline < len(cut) - 1 else cut


def _head(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    cut = text[:budget]
    newline = cut.rfind("\n")
    return cut[: newline + 1] if newline > 0 else cut
