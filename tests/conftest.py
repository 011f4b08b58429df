"""Shared fixtures. Each area keeps its fixtures in its own plugin module."""

import os

# Anonymous reports are filed under keyed pseudonyms (bot/core/privacy.py); the tests' secret.
os.environ.setdefault("BOT_PRIVACY_SECRET", "tests-privacy-secret-0123456789abcdef")

pytest_plugins = [
    "tests.fixtures_db",
    "tests.fixtures_knowledge",
    "tests.fixtures_conversation",
    "tests.fixtures_tickets",
    "tests.fixtures_console",
    "tests.fixtures_knowledge_editor",
]
