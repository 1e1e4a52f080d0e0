"""Prometheus metrics of one service instance (its own registry, so tests stay isolated)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "prefloop_request_seconds",
            "HTTP request latency by route and status code.",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.generate_seconds = Histogram(
            "prefloop_generate_seconds",
            "Time the engine spent generating one suggestion.",
            ["engine"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.suggestions = Counter(
            "prefloop_suggestions",
            "Suggestions served, by model version.",
            ["model_version", "language"],
            registry=r,
        )
        self.cancelled = Counter(
            "prefloop_generations_cancelled",
            "Generations stopped before they finished, by reason.",
            ["reason"],
            registry=r,
        )
        self.events = Counter(
            "prefloop_events", "Feedback events stored, by kind.", ["kind"], registry=r
        )
        self.events_refused = Counter(
            "prefloop_events_refused",
            "Feedback events refused, by cause.",
            ["cause"],
            registry=r,
        )
        self.events_duplicate = Counter(
            "prefloop_events_duplicate",
            "Feedback events received again and ignored (idempotent resend).",
            registry=r,
        )
        self.writer_queue = Gauge(
            "prefloop_writer_queue", "Database operations waiting for the writer.", registry=r
        )
        self.auth_refused = Counter(
            "prefloop_auth_refused",
            "Requests refused before a route ran or by its access check, by reason: missing, "
            "malformed, wrong or revoked token (401), not_admin and user_mismatch (403), "
            "foreign_host (400).",
            ["reason"],
            registry=r,
        )
