"""Shared fixtures. Each area keeps its fixtures in its own plugin module."""

pytest_plugins = [
    "tests.fixtures_db",
    "tests.fixtures_knowledge",
    "tests.fixtures_conversation",
    "tests.fixtures_tickets",
    "tests.fixtures_console",
    "tests.fixtures_knowledge_editor",
]
