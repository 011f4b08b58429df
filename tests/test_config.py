"""Settings: one time zone for the whole deployment, and the two old keys it replaced."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.core import config
from bot.core.config import ConfigError, Settings, TelegramSettings, load_settings
from tests.fixtures_knowledge import REPO_ROOT


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the warnings that are logged once per process."""
    monkeypatch.setattr(config, "_warned", set())


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def zones(settings: Settings) -> tuple[str, str, str]:
    return settings.timezone, settings.telegram.timezone, settings.tickets.timezone


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_the_bundled_config_sets_the_one_time_zone_without_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(REPO_ROOT / "config.toml")

    assert zones(settings) == ("Asia/Shanghai",) * 3
    assert warnings(caplog) == []


def test_without_a_time_zone_it_is_china_standard_time(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, 'city = "示例市"\n'))

    assert zones(settings) == ("Asia/Shanghai",) * 3


def test_the_top_level_time_zone_serves_every_section(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(write_config(tmp_path, 'timezone = "Asia/Urumqi"\n[telegram]\n'))

    assert zones(settings) == ("Asia/Urumqi",) * 3
    assert warnings(caplog) == []


@pytest.mark.parametrize("section", ["telegram", "tickets"])
def test_an_old_key_is_still_read_with_a_warning_that_names_the_new_one(
    section: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(tmp_path, f'[{section}]\ntimezone = "Asia/Urumqi"\n')

    settings = load_settings(path)

    assert zones(settings) == ("Asia/Urumqi",) * 3
    [warning] = warnings(caplog)
    assert warning.startswith(f"{path}: [{section}] timezone is deprecated")
    assert 'write timezone = "Asia/Urumqi" at the top of the config file' in warning


def test_the_warning_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config(tmp_path, '[tickets]\ntimezone = "Asia/Urumqi"\n')

    load_settings(path)
    load_settings(path)

    assert len(warnings(caplog)) == 1


def test_both_old_keys_alike_are_read_with_a_warning_for_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(
        tmp_path,
        '[telegram]\ntimezone = "Asia/Urumqi"\n[tickets]\ntimezone = "Asia/Urumqi"\n',
    )

    settings = load_settings(path)

    assert zones(settings) == ("Asia/Urumqi",) * 3
    logged = warnings(caplog)
    assert len(logged) == 2
    assert "[telegram] timezone is deprecated" in logged[0]
    assert "[tickets] timezone is deprecated" in logged[1]


def test_two_old_keys_that_differ_are_refused_with_both_values(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[telegram]\ntimezone = "Asia/Urumqi"\n[tickets]\ntimezone = "Asia/Shanghai"\n',
    )

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    message = str(raised.value)
    assert message.startswith(
        f'{path}: 配置无效 / invalid settings:\n  [telegram] timezone = "Asia/Urumqi"'
    )
    assert '[tickets] timezone = "Asia/Shanghai" differ' in message
    assert "there is one time zone now" in message
    assert "at the top of the config file" in message


def test_an_old_key_that_contradicts_the_new_one_is_refused(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, 'timezone = "Asia/Shanghai"\n[tickets]\ntimezone = "Asia/Urumqi"\n'
    )

    with pytest.raises(ConfigError, match=r'\[tickets\] timezone = "Asia/Urumqi" differs from'):
        load_settings(path)


def test_an_old_key_that_repeats_the_new_one_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(
        tmp_path, 'timezone = "Asia/Urumqi"\n[telegram]\ntimezone = "Asia/Urumqi"\n'
    )

    settings = load_settings(path)

    assert zones(settings) == ("Asia/Urumqi",) * 3
    [warning] = warnings(caplog)
    assert "[telegram] timezone is no longer needed" in warning


def test_settings_built_in_code_follow_the_same_rule() -> None:
    settings = Settings(telegram=TelegramSettings(timezone="Asia/Urumqi"))

    assert zones(settings) == ("Asia/Urumqi",) * 3
    assert zones(Settings(timezone="Asia/Urumqi")) == ("Asia/Urumqi",) * 3


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('timezone = "Mars/Olympus"\n', 'timezone = "Mars/Olympus"'),
        ('[telegram]\ntimezone = "Mars/Olympus"\n', '[telegram] timezone = "Mars/Olympus"'),
        ('[tickets]\ntimezone = "Mars/Olympus"\n', '[tickets] timezone = "Mars/Olympus"'),
    ],
)
def test_an_unknown_time_zone_is_refused_naming_the_key_and_value(
    tmp_path: Path, text: str, named: str
) -> None:
    with pytest.raises(ConfigError, match="unknown time zone") as raised:
        load_settings(write_config(tmp_path, text))

    assert named in str(raised.value)


@pytest.mark.parametrize("hours", ["25:99-07:00", "9-17", "17:30-09:00", "09:00"])
def test_staff_hours_that_are_not_a_day_range_are_refused(tmp_path: Path, hours: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write_config(tmp_path, f'[telegram]\nstaff_hours = "{hours}"\n'))

    assert f'[telegram] staff_hours = "{hours}"' in str(raised.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[wbe]\nport = 8080\n", "[wbe]"),
        ('[department.ecology-environment]\nchannels = ["console"]\n', "[department]"),
        ('[telegram]\nstaf_hours = "09:00-17:00"\n', "[telegram] staf_hours"),
        ("citi = 1\n", "[citi]"),
    ],
)
def test_a_misspelt_section_or_key_is_refused(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match="unknown section or key") as raised:
        load_settings(write_config(tmp_path, text))

    assert named in str(raised.value)


def test_a_department_section_the_knowledge_base_lacks_is_refused(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(tmp_path, '[departments.ecology-environmnt]\nchannels = ["console"]\n')
    )

    assert settings.unknown_departments(["ecology-environment"]) == ["ecology-environmnt"]
    with pytest.raises(ConfigError, match=r"\[departments.ecology-environmnt\]"):
        settings.check_departments(["ecology-environment"])
    settings.check_departments(["ecology-environment", "ecology-environmnt"])
