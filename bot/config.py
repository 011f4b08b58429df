"""Settings of one deployment, read from config.toml; secrets come from the environment only.

`BOT_CONFIG` names another config file. Relative paths in the file are relative to the file's
folder, so a deployment can keep its config, knowledge base and database together.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config.toml"


class ConfigError(Exception):
    """The config file is missing or invalid; the message names the file and the setting."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnowledgeSettings(_Section):
    dir: Path = Path("knowledge")


class MatchingSettings(_Section):
    """Thresholds on the calibrated score (0..1) that turn it into a decision."""

    answer_threshold: float = Field(0.6, ge=0, le=1)
    suggest_threshold: float = Field(0.4, ge=0, le=1)
    margin: float = Field(0.1, ge=0, le=1)
    max_suggestions: int = Field(3, ge=1, le=5)

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


class WebSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    base_url: str = ""
    session_hours: int = Field(8, ge=1)
    login_attempts: int = Field(5, ge=1)
    login_window_minutes: int = Field(15, ge=1)


class Settings(_Section):
    """All settings of one deployment."""

    model_config = ConfigDict(extra="allow", frozen=True)

    source: Path = DEFAULT_CONFIG
    city: str = "示例市"
    city_en: str = "Shili City"
    knowledge: KnowledgeSettings = KnowledgeSettings()
    matching: MatchingSettings = MatchingSettings()
    database: DatabaseSettings = DatabaseSettings()
    telegram: TelegramSettings = TelegramSettings()
    web: WebSettings = WebSettings()

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

    def section(self, name: str) -> dict[str, Any]:
        """Return a section this module does not model (for parts that validate their own)."""
        extra = self.model_extra or {}
        value = extra.get(name, {})
        return value if isinstance(value, dict) else {}


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"])
        lines.append(f"  [{where}] {problem['msg']}")
    return "\n".join(lines)


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
        raise ConfigError(f"{chosen}: invalid settings:\n{_describe(error)}") from error
