"""Shared fixtures. Each area keeps its fixtures in its own plugin module."""

pytest_plugins = ["tests.fixtures_db"]
