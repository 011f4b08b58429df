"""The import contracts in pyproject.toml ([tool.importlinter], docs/architecture.md) bite.

Each case copies the packages into a temporary folder, adds one small module that breaks a
contract, and runs `lint-imports` there: it must fail, name the contract and show the offending
import. The real tree is never touched, and the cases hold whatever else the real tree breaks
today, since each looks for its own module's line in the report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip(
    "importlinter",
    reason="import-linter is not installed (make test installs it from requirements-dev.lock)",
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "tryout")
# `lint-imports` exactly as `make lint` runs it, from the interpreter running the tests.
LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def contract_names() -> dict[str, str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c["name"] for c in config["tool"]["importlinter"]["contracts"]}


def copy_tree(destination: Path) -> Path:
    """The packages' Python files and pyproject.toml, copied under `destination`."""

    def not_python(folder: str, names: list[str]) -> list[str]:
        return [
            name
            for name in names
            if name == "__pycache__"
            or not (name.endswith(".py") or (Path(folder) / name).is_dir())
        ]

    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, destination / package, ignore=not_python)
    shutil.copy2(REPO_ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


def lint_imports(tree: Path, contract: str) -> subprocess.CompletedProcess[str]:
    """Run `lint-imports` on the copy, for one contract, with the copy first on the path."""
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "PYTHONSTARTUP"}}
    env["PYTHONPATH"] = str(tree)
    env["COLUMNS"] = "500"  # one report line per import, however long the contract's name
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-logo", "--no-cache", "--contract", contract],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def add_module(tree: Path, dotted: str, source: str) -> None:
    path = tree.joinpath(*dotted.split(".")).with_suffix(".py")
    assert not path.exists(), path
    path.write_text(source, encoding="utf-8")


# contract id, the module added, its source, the import the report must show
VIOLATIONS = [
    (
        "core-below-domains",
        "bot.core.contract_probe",
        "from bot.console import app\n",
        "bot.core.contract_probe -> bot.console.app",
    ),
    (
        "domains-without-telegram-or-web-server",
        "bot.tickets.contract_probe",
        "from telegram import Bot\n",
        "bot.tickets.contract_probe -> telegram",
    ),
    (
        "domains-without-telegram-or-web-server",
        "bot.answering.contract_probe",
        "from aiohttp import web\n",
        "bot.answering.contract_probe -> aiohttp.web",
    ),
    (
        "domains-below-front-ends",
        "bot.answering.contract_probe",
        "import handlers.status\n",
        "bot.answering.contract_probe -> handlers.status",
    ),
    (
        "handlers-beside-console-and-api",
        "handlers.contract_probe",
        "from bot.api import callbacks\n",
        "handlers.contract_probe -> bot.api.callbacks",
    ),
    (
        "only-runner-uses-tryout",
        "bot.console.contract_probe",
        "import tryout.chat\n",
        "bot.console.contract_probe -> tryout.chat",
    ),
]


def test_every_contract_has_a_violation_here() -> None:
    assert {case[0] for case in VIOLATIONS} == set(contract_names())


@pytest.mark.parametrize(
    ("contract", "module", "source", "reported"),
    VIOLATIONS,
    ids=[f"{case[0]}:{case[1]}" for case in VIOLATIONS],
)
def test_a_module_breaking_a_contract_fails_the_check(
    tmp_path: Path, contract: str, module: str, source: str, reported: str
) -> None:
    tree = copy_tree(tmp_path)
    add_module(tree, module, source)

    result = lint_imports(tree, contract)

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{contract_names()[contract]} BROKEN" in output, output
    assert f"-   {reported} (l.1)" in output, output


@pytest.mark.parametrize(
    ("contract", "module", "source"),
    [
        # Delivery posts webhooks with aiohttp's client: only aiohttp.web is forbidden.
        (
            "domains-without-telegram-or-web-server",
            "bot.tickets.contract_probe",
            "from aiohttp import ClientSession\n",
        ),
        # The domains build on core and tickets on answering (departments, categories).
        (
            "domains-below-front-ends",
            "bot.tickets.contract_probe",
            "from bot.answering import knowledge_base\nfrom bot.core import config\n",
        ),
    ],
    ids=["aiohttp-client-in-tickets", "tickets-on-answering-and-core"],
)
def test_an_allowed_import_is_not_reported(
    tmp_path: Path, contract: str, module: str, source: str
) -> None:
    tree = copy_tree(tmp_path)
    add_module(tree, module, source)

    result = lint_imports(tree, contract)

    output = result.stdout + result.stderr
    # The contract was checked (kept, or broken by today's code) and the module is not blamed.
    assert re.search(rf"^{re.escape(contract_names()[contract])} (KEPT|BROKEN)", output, re.M)
    assert module not in output, output
