"""`python -m benchmarks [NAME] [OPTIONS]`: run one benchmark, or every benchmark without NAME.

Each benchmark is a module of this package with a `main(argv) -> int`; add new ones to BENCHMARKS.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# Name on the command line -> module of this package.
BENCHMARKS = {
    "matching": "benchmarks.matching",
    "telegram": "benchmarks.telegram_throughput",
    "console": "benchmarks.console",
    "tickets": "benchmarks.tickets",
    "knowledge": "benchmarks.knowledge_editor",
    "fuzz": "benchmarks.fuzz",
    "failover": "benchmarks.failover",
    "replication": "benchmarks.replication",
}


def main(argv: Sequence[str]) -> int:
    """Run the named benchmark with the remaining arguments, or all of them with none."""
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nbenchmarks: " + ", ".join(BENCHMARKS))
        return 0
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], list(argv[1:])
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        return int(importlib.import_module(BENCHMARKS[name]).main(rest))
    status = 0
    for module in BENCHMARKS.values():
        status = max(status, int(importlib.import_module(module).main(list(argv))))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
