"""Benchmarks of the bot's parts at realistic and larger sizes: `python -m benchmarks`."""
