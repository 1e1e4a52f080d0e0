"""prefloop in a real VS Code (code-server in headless chromium), as a user sees it: ghost
text from the model, Tab, word-by-word acceptance, typing over, Escape, retention, the
status bar, the commands, turning suggestions off, and a service outage.

Every wait is on something observable (an element on screen, a row in the store) with a
deadline; the tests run in file order on one editor, and the outage test goes last.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import CHECKPOINTS, Latencies, Service
from tests.e2e.workbench import TOAST, Workbench, start_line, suggest
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.vscode]


def file_text(project: Path, name: str) -> str:
    return (project / name).read_text()


def test_ghost_text_comes_from_the_model(
    workbench: Workbench, service: Service, project: Path, latencies: Latencies
) -> None:
    start_line(workbench, "geometry.py")
    shown = suggest(workbench, service.store, "    return math.", latencies.add)
    assert shown.row["language"] == "python"
    assert shown.row["path"] == "geometry.py"
    assert shown.row["model_version"] == service.model_version()
    # The README's picture (docs/vscode-ghost-text.png) is a copy of this one.
    workbench.screenshot("ghost-text")
    workbench.call("press", key="Escape")
    workbench.wait_no_ghost()


def test_tab_accepts(
    workbench: Workbench, service: Service, project: Path, latencies: Latencies
) -> None:
    start_line(workbench, "accept.py")
    shown = suggest(workbench, service.store, "    return ", latencies.add)
    workbench.call("press", key="Tab")
    event = service.store.wait_event(shown.suggestion_id, "accepted")
    assert event["text"] == shown.candidate
    workbench.save_file()
    assert ("    return " + shown.candidate) in file_text(project, "accept.py")
    workbench.screenshot("accepted")


def test_accept_next_word_is_a_partial_acceptance(
    workbench: Workbench, service: Service, latencies: Latencies
) -> None:
    start_line(workbench, "words.py")
    shown = suggest(workbench, service.store, '    return "Hello, " + ', latencies.add)
    # Leading whitespace is a word of its own to VS Code: accept it and one more word.
    for _ in range(2 if shown.candidate[:1].isspace() else 1):
        before = len(workbench.ghost_text())
        workbench.call("press", key="Control+ArrowRight")

        # What is left of the suggestion stays on screen, shorter.
        wait_until(
            lambda: len(workbench.ghost_text()),
            lambda left, before=before: 0 < left < before,
            what=f"the rest of the suggestion after accepting a word (of {before} chars)",
        )
    workbench.call("press", key="Escape")
    partial = service.store.wait_event(shown.suggestion_id, "partially_accepted")
    assert 0 < partial["accepted_chars"] < len(shown.candidate)
    assert shown.candidate.startswith(partial["text"])
    assert len(partial["text"]) == partial["accepted_chars"]
    dismissed = service.store.wait_event(shown.suggestion_id, "dismissed")
    assert dismissed["reason"] == "escaped"


def test_typing_over_is_dismissed_then_rewritten(
    workbench: Workbench, service: Service, project: Path, latencies: Latencies
) -> None:
    start_line(workbench, "typed.py")
    shown = suggest(workbench, service.store, "    return ", latencies.add)
    mine = next(t for t in ("x ** 2  # by hand", "pow(x, 2)  # by hand") if t[0] != shown.ghost[0])
    workbench.call("type", text=mine)
    dismissed = service.store.wait_event(shown.suggestion_id, "dismissed")
    assert dismissed["reason"] == "typed_over"
    rewritten = service.store.wait_event(shown.suggestion_id, "rewritten")
    assert rewritten["text"].startswith(mine)
    assert not service.store.events(shown.suggestion_id, "accepted")


def test_escape_dismisses(workbench: Workbench, service: Service, latencies: Latencies) -> None:
    start_line(workbench, "escape.py")
    shown = suggest(workbench, service.store, "    return ", latencies.add)
    workbench.call("press", key="Escape")
    workbench.wait_no_ghost()
    dismissed = service.store.wait_event(shown.suggestion_id, "dismissed")
    assert dismissed["reason"] == "escaped"
    assert dismissed["shown_ms"] > 0


def test_edited_acceptance_is_retained_less(
    workbench: Workbench, service: Service, latencies: Latencies
) -> None:
    start_line(workbench, "retain.py")
    shown = suggest(workbench, service.store, "    return ", latencies.add)
    workbench.call("press", key="Tab")
    service.store.wait_event(shown.suggestion_id, "accepted")
    first = service.store.wait_event(
        shown.suggestion_id,
        "retained",
        timeout=CHECKPOINTS["30s"] + 30,
        where=lambda e: e["checkpoint"] == "30s",
    )
    assert first["similarity"] == pytest.approx(1.0)
    # Rewrite the end of the accepted text before the next checkpoint.
    workbench.call("press", key="End")
    for _ in range(max(2, len(shown.candidate) // 2)):
        workbench.call("press", key="Backspace")
    workbench.call("type", text="None")
    second = service.store.wait_event(
        shown.suggestion_id,
        "retained",
        timeout=CHECKPOINTS["2m"] + 30,
        where=lambda e: e["checkpoint"] == "2m",
    )
    assert second["similarity"] < first["similarity"]
    assert second["text"] != shown.candidate


def test_status_bar_and_commands(
    workbench: Workbench, service: Service, project: Path, latencies: Latencies
) -> None:
    version = service.model_version()
    status = workbench.wait_status(rf"prefloop {re.escape(version)}")
    assert "offline" not in status
    entries = workbench.palette_entries("prefloop")
    for title in ("Toggle Suggestions", "Show Status", "Show Log", "Trigger Retrain"):
        assert f"prefloop: {title}" in entries, entries
    assert not any("Dismiss the Visible" in e for e in entries)
    workbench.run_command("prefloop: Show Status")
    shown_status = workbench.call("waitText", selector=TOAST, pattern=r"Service: .* \(connected\)")
    assert f"Service: {service.url} (connected)" in shown_status
    assert f"Model version: {version}" in shown_status
    workbench.clear_notifications()

    workbench.run_command("prefloop: Toggle Suggestions")
    workbench.wait_status(r"prefloop: off")
    start_line(workbench, "toggle.py")
    before = len(service.store.suggestions())
    workbench.call("type", text="    return ")
    # Back on: the next suggestion is for the text typed after this point, and nothing was
    # asked of the service while suggestions were off.
    workbench.run_command("prefloop: Toggle Suggestions")
    workbench.wait_status(rf"prefloop {re.escape(version)}")
    assert workbench.ghost_text() == ""
    shown = suggest(workbench, service.store, "x * ", latencies.add)
    rows = service.store.suggestions()[before:]
    assert [r["id"] for r in rows] == [shown.suggestion_id]
    workbench.call("press", key="Escape")
    workbench.clear_notifications()


def test_service_outage_leaves_the_editor_usable(
    workbench: Workbench, service: Service, project: Path, latencies: Latencies
) -> None:
    start_line(workbench, "outage.py")
    shown = suggest(workbench, service.store, "    return ", latencies.add)
    service.stop()
    # The suggestion on screen is still Escape-able; its dismissal waits in the spool.
    workbench.call("press", key="Escape")
    workbench.wait_no_ghost()
    workbench.wait_status(r"prefloop: offline", timeout=30)
    # Keep typing: each keystroke asks the (gone) service; the editor keeps up and shows
    # no error popups.
    for line in ("x / 2", "\n    # still typing while the service is away", "\n"):
        workbench.call("type", text=line)
    workbench.save_file()
    assert "# still typing while the service is away" in file_text(project, "outage.py")
    assert workbench.toasts() == []
    workbench.screenshot("outage")
    assert not service.store.events(shown.suggestion_id, "dismissed")

    service.restart()
    dismissed = service.store.wait_event(shown.suggestion_id, "dismissed", timeout=60)
    assert dismissed["reason"] == "escaped"
    workbench.wait_status(rf"prefloop {re.escape(service.model_version())}", timeout=30)
    # And suggestions come back.
    suggest(workbench, service.store, "    return ", latencies.add)
    assert workbench.toasts() == []
