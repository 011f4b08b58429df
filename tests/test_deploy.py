"""What docs/deploy.md ships works as written: the nginx site passes `nginx -t`, the systemd
units pass `systemd-analyze verify`, the example configs load and differ only where the bot
copies must, and the backup and restore drill brings a database back with the bot's data.

Where a tool is missing the test is skipped with the reason; `make test` installs nginx.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core.config import load_settings
from bot.core.db import create_engine, session_factory, upgrade_database
from bot.core.models import BotState, Resident
from tests.fixtures_conversation import REPO_ROOT
from tests.fixtures_db import POSTGRES_ADMIN_URL, _skip_postgres, postgres_admin

DEPLOY = REPO_ROOT / "deploy"
INSTALLED_AT = "/opt/publicbot"


SEARCHED = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def tool(name: str) -> str:
    """Return where a program is (also in /usr/sbin, where Debian puts nginx), or skip."""
    found = shutil.which(name, path=SEARCHED)
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install nginx openssl systemd)")
    return found


def needs(*names: str) -> None:
    for name in names:
        tool(name)


def test_the_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    """The shipped site, with a self-signed certificate in place of the real one."""
    needs("nginx", "openssl")
    certificate = [
        "-subj",
        "/CN=console.example.gov.cn",
        "-keyout",
        str(tmp_path / "privkey.pem"),
        "-out",
        str(tmp_path / "fullchain.pem"),
    ]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *certificate],
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "nginx" / "publicbot.conf").read_text(encoding="utf-8")
    assert site.count("/etc/publicbot/tls/") == 4
    site = site.replace("/etc/publicbot/tls/", f"{tmp_path}/")
    # Logs go to the test's folder, in case /var/log/nginx is not there.
    site = site.replace("/var/log/nginx/", f"{tmp_path}/")
    (tmp_path / "publicbot.conf").write_text(site, encoding="utf-8")
    (tmp_path / "nginx.conf").write_text(
        f"worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n    include {tmp_path}/publicbot.conf;\n}}\n",
        encoding="utf-8",
    )
    checked = subprocess.run(
        [tool("nginx"), "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Each unit as shipped, but with the install folder pointed at this checkout (verify checks
    that ExecStart's program exists)."""
    needs("systemd-analyze", "pg_dump")
    python = Path(sys.executable)
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {u.name for u in units} >= {
        "publicbot-bot@.service",
        "publicbot-web.service",
        "publicbot-worker.service",
        "publicbot-backup.service",
        "publicbot-backup.timer",
    }
    pg_dump = tool("pg_dump")
    for unit in units:
        text = unit.read_text(encoding="utf-8")
        text = text.replace(f"{INSTALLED_AT}/.venv/bin/python", str(python))
        text = text.replace(INSTALLED_AT, str(REPO_ROOT))
        text = text.replace("/usr/bin/pg_dump", pg_dump)
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    # A template is checked as the instances the docs enable.
    shutil.copy(tmp_path / "publicbot-bot@.service", tmp_path / "publicbot-bot@1.service")
    names = [u.name for u in units if not u.name.endswith("@.service")]
    names.append("publicbot-bot@1.service")
    checked = subprocess.run(
        [tool("systemd-analyze"), "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    # Warnings (an unknown key, a bad value) do not change the exit code: none is allowed.
    assert "publicbot" not in output, output


def test_the_example_configs_load_and_the_bot_copies_differ_only_where_they_must() -> None:
    shared = load_settings(DEPLOY / "config" / "config.toml")
    copies = [load_settings(DEPLOY / "config" / f"bot-{n}.toml") for n in (1, 2)]
    assert shared.web.enabled
    assert shared.callbacks.enabled
    assert shared.web.trusted_proxies == ("127.0.0.1",)
    for copy in copies:
        assert not copy.web.enabled, "the console runs in publicbot-web"
        assert not copy.callbacks.enabled, "the callbacks run in publicbot-worker"
    assert {c.telegram.webhook_port for c in copies} == {8443, 8444}
    ports = [c.metrics.bot_port for c in copies] + [shared.metrics.web_port]
    ports.append(shared.metrics.worker_port)
    assert len(set(ports)) == 4, "every process on the host needs a metrics port of its own"

    def same(settings: object) -> dict[str, object]:
        assert hasattr(settings, "model_dump")
        data: dict[str, object] = settings.model_dump(
            exclude={"source", "web", "callbacks", "telegram", "metrics"}
        )
        return data

    for copy in copies:
        assert same(copy) == same(shared)
        assert copy.telegram.model_dump(exclude={"webhook_port"}) == shared.telegram.model_dump(
            exclude={"webhook_port"}
        )
    # The nginx upstreams name the ports the copies listen on.
    site = (DEPLOY / "nginx" / "publicbot.conf").read_text(encoding="utf-8")
    for copy in copies:
        assert f"127.0.0.1:{copy.telegram.webhook_port}" in site
    assert f"127.0.0.1:{shared.web.port}" in site
    assert f"127.0.0.1:{shared.callbacks.port}" in site


async def run_tool(*arguments: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *arguments, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode(errors="replace")


async def test_the_backup_and_restore_drill_brings_the_data_back(tmp_path: Path) -> None:
    """docs/deploy.md's drill: pg_dump --format=custom, createdb, pg_restore, the bot reads it."""
    if _skip_postgres():
        pytest.skip("BOT_TEST_SKIP_POSTGRES=1")
    needs("pg_dump", "pg_restore")
    suffix = uuid.uuid4().hex[:10]
    source, restored = f"drill_source_{suffix}", f"drill_restored_{suffix}"
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    plain = base.replace("postgresql+asyncpg://", "postgresql://")
    await postgres_admin(f'CREATE DATABASE "{source}"')
    try:
        engine = create_engine(f"{base}/{source}")
        await upgrade_database(engine)
        async with session_factory(engine)() as session:
            session.add(Resident(telegram_user_id=4242, chat_id=4242, display_name="演练"))
            session.add(BotState(kind="bot_data", key="drill", value={"kept": True}))
            await session.commit()
        await engine.dispose()
        dump = tmp_path / "publicbot.dump"
        await run_tool(
            "pg_dump", "--format=custom", f"--dbname={plain}/{source}", f"--file={dump}"
        )
        await postgres_admin(f'CREATE DATABASE "{restored}"')
        await run_tool(
            "pg_restore",
            "--exit-on-error",
            "--no-owner",
            f"--dbname={plain}/{restored}",
            str(dump),
        )
        engine = create_engine(f"{base}/{restored}")
        try:
            # At the newest schema already: upgrading is a no-op, and the rows are there.
            await upgrade_database(engine)
            async with session_factory(engine)() as session:
                residents = await session.scalar(select(func.count()).select_from(Resident))
                state = await session.scalar(select(BotState.value).where(BotState.key == "drill"))
            assert residents == 1
            assert state == {"kept": True}
        finally:
            await engine.dispose()
    finally:
        await postgres_admin(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
        await postgres_admin(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')
