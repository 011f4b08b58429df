"""The general lexicon of public-service Chinese shipped with the matcher (lexicon.toml).

Residents say 电瓶车, 上牌 and "dog licence"; a city's knowledge base says 电动自行车, 登记 and
犬只登记. The lexicon's groups put the official word first and the words residents use after it,
Chinese and English, so that a new city's knowledge base understands them without writing a
synonyms file of its own. The matcher reads them after the city's own groups
(knowledge/synonyms.toml): a word in both keeps the city's group. docs/matching.md tells how the
lexicon was written and how to switch it off ([matching] general_lexicon).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

LEXICON_FILE = Path(__file__).resolve().parent / "lexicon.toml"


@lru_cache(maxsize=1)
def general_lexicon(path: Path = LEXICON_FILE) -> tuple[tuple[str, ...], ...]:
    """Return the lexicon's synonym groups (official word first), read once per process."""
    if not path.is_file():
        return ()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    groups = data.get("groups", [])
    return tuple(
        tuple(str(word) for word in group if isinstance(word, str) and word.strip())
        for group in groups
        if isinstance(group, list) and len(group) >= 2
    )
