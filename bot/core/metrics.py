"""The process's Prometheus metrics: what the code counts as it works.

Every metric lives in `REGISTRY` (not prometheus-client's global one, so a test or a second
application in one process sees exactly these). The code increments them where the thing
happens; bot/ops/health.py serves them on /metrics, together with the gauges it reads from the
database at scrape time (escalations, tickets, outbox).

No label ever carries personal data: labels are fixed words (a decision, a channel, an outcome,
a refusal reason, a role), never a chat id, a name, a department officer or a resident's text.

Leadership (one active bot, standbys waiting): whoever takes or gives up the lead calls
`leadership_changed(is_leader)`, which counts the change in `LEADERSHIP_CHANGES` and sets the
`IS_LEADER` gauge (1 leading, 0 standing by).
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# The role of this process: "bot" (python -m bot run), "web" or "worker"; one series at 1.
PROCESS_ROLE = Gauge(
    "bot_process_role",
    "The kind of this process (1 for its role)",
    ["role"],
    registry=REGISTRY,
)

UPDATES_HANDLED = Counter(
    "bot_updates_handled",
    "Telegram updates the bot has taken in (every kind, before any handler)",
    registry=REGISTRY,
)
DECISIONS = Counter(
    "bot_decisions",
    "Residents' questions by the matcher's decision",
    ["decision"],
    registry=REGISTRY,
)
MATCH_SECONDS = Histogram(
    "bot_match_seconds",
    "Time the matcher takes to decide on one question",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
DELIVERY_ATTEMPTS = Counter(
    "bot_delivery_attempts",
    "Outbox delivery attempts by channel and outcome (sent, retry, failed, dropped)",
    ["channel", "outcome"],
    registry=REGISTRY,
)
CALLBACK_REFUSALS = Counter(
    "bot_callback_refusals",
    "Department callbacks refused, by reason",
    ["reason"],
    registry=REGISTRY,
)
LEADERSHIP_CHANGES = Counter(
    "bot_leadership_changes",
    "Times this process took or gave up the lead (active bot / standby)",
    registry=REGISTRY,
)
TELEGRAM_CALLS_REPLAYED = Counter(
    "bot_telegram_calls_replayed",
    "Bot API calls not made again when an update was handled a second time after a takeover "
    "or a restart (their first answer was journaled)",
    registry=REGISTRY,
)
IS_LEADER = Gauge(
    "bot_is_leader",
    "1 while this process is the active bot, 0 while it stands by",
    registry=REGISTRY,
)

# The decisions the matcher makes (bot.answering.matching); anything else is counted as "other",
# so a label can never grow without bound.
DECISION_KINDS = frozenset({"answer", "suggest", "escalate", "report", "decline"})
# The refusal reasons of bot/api/callbacks.py.
REFUSAL_REASONS = frozenset(
    {
        "too_large",
        "unknown_department",
        "bad_signature",
        "not_json",
        "invalid_fields",
        "replay",
        "unknown_ticket",
        "not_permitted",
        "transition",
        "invalid_input",
    }
)


def set_role(role: str) -> None:
    """Mark this process's role (bot, web, worker) in `bot_process_role`."""
    for other in ("bot", "web", "worker"):
        PROCESS_ROLE.labels(role=other).set(1 if other == role else 0)


def count_decision(decision: str) -> None:
    DECISIONS.labels(decision=decision if decision in DECISION_KINDS else "other").inc()


def count_refusal(reason: str) -> None:
    CALLBACK_REFUSALS.labels(reason=reason if reason in REFUSAL_REASONS else "other").inc()


def count_delivery(channel: str, status: str) -> None:
    """Count one delivery attempt by the outbox row's new status."""
    outcome = {"pending": "retry"}.get(status, status)
    if outcome not in ("sent", "retry", "failed", "dropped"):
        outcome = "other"
    DELIVERY_ATTEMPTS.labels(channel=channel[:16], outcome=outcome).inc()


def leadership_changed(is_leader: bool) -> None:
    """Record that this process took (True) or gave up (False) the lead."""
    LEADERSHIP_CHANGES.inc()
    IS_LEADER.set(1 if is_leader else 0)
