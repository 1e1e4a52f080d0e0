"""initializationOptions over settings, log records without code, today's counters."""

from __future__ import annotations

import datetime as dt
import logging
import sys

from prefloop.lsp.config import LspConfig
from prefloop.lsp.events import EventFactory
from prefloop.lsp.logs import CodeFreeFilter
from prefloop.lsp.stats import DailyStats
from prefloop.settings import Settings


def test_options_override_settings_and_bad_ones_are_ignored() -> None:
    base = LspConfig(Settings(server_url="http://a:1", lsp_debounce=0.2))
    config, warnings = base.with_options(
        {
            "serverUrl": "http://b:2",
            "debounce": -5,
            "retentionCheckpoints": [1, 2, 3, 4],
            "shownDelay": 0.1,
            "token": "t0k",
            "enabled": "yes",
            "mystery": 1,
        }
    )
    assert config.settings.server_url == "http://b:2"
    assert config.settings.lsp_debounce == 0.2
    assert config.timings.checkpoints == (1.0, 2.0, 3.0, 4.0)
    assert config.timings.shown_delay == 0.1
    assert config.token == "t0k" and config.enabled is True
    assert sorted(warnings) == [
        "invalid initializationOptions.debounce; ignored",
        "invalid initializationOptions.enabled; ignored",
        "unknown initializationOptions key 'mystery'; ignored",
    ]
    same, warnings = base.with_options([1, 2])
    assert same is base and warnings


def test_checkpoints_must_increase() -> None:
    config, warnings = LspConfig(Settings()).with_options({"retentionCheckpoints": [5, 1, 2, 3]})
    assert config.settings.lsp_retention_checkpoints == (30.0, 120.0, 300.0, 600.0)
    assert warnings == ["invalid initializationOptions.retentionCheckpoints; ignored"]


def test_pygls_records_lose_code_but_keep_names() -> None:
    record = logging.LogRecord(
        "pygls.protocol.json_rpc",
        logging.ERROR,
        __file__,
        1,
        "Failed to handle request %s %s %s",
        ("42", "textDocument/inlineCompletion", {"text": "password = 'hunter2'"}),
        None,
    )
    assert CodeFreeFilter().filter(record)
    assert record.getMessage() == "Failed to handle request 42 textDocument/inlineCompletion <dict>"
    try:
        raise ValueError("def secret(): pass")
    except ValueError:
        record = logging.LogRecord(
            "pygls.server",
            logging.ERROR,
            __file__,
            1,
            "Unable to handle message",
            (),
            sys.exc_info(),
        )
    CodeFreeFilter().filter(record)
    assert record.getMessage() == "Unable to handle message [ValueError]"
    assert record.exc_info is None
    own = logging.LogRecord("prefloop.lsp.server", logging.INFO, __file__, 1, "%s", ("x y",), None)
    CodeFreeFilter().filter(own)
    assert own.getMessage() == "x y"


def test_daily_stats_reset_at_midnight() -> None:
    day = [dt.date(2026, 11, 23)]
    stats = DailyStats(today=lambda: day[0])
    factory = EventFactory()
    stats.record([factory.shown("s", 0), factory.shown("t", 0), factory.accepted("s", 0, "x")])
    summary = stats.summary()
    assert (summary["shown"], summary["accepted"], summary["acceptanceRate"]) == (2, 1, 0.5)
    day[0] = dt.date(2026, 11, 24)
    assert stats.summary()["shown"] == 0
    assert stats.summary()["acceptanceRate"] is None
