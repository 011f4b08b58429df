"""The general lexicon of public-service Chinese shipped with the matcher (lexicon.toml).

Residents say 电瓶车, 上牌 and "dog licence"; a city's knowledge base says 电动自行车, 登记 and
犬只登记. The lexicon's groups put the official word first and the words residents use after it,
Chinese and English, so that a new city's knowledge base understands them without writing a
synonyms file of its own. English words serve the matcher when the semantic signal is off; with
it on, English is matched by meaning and only the Chinese words are read. The matcher reads
them after the city's own groups
(knowledge/synonyms.toml): a word in both keeps the city's group. docs/matching.md tells how the
lexicon was written and how to switch it off ([matching] general_lexicon).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from bot.core.text import has_cjk

LEXICON_FILE = Path(__file__).resolve().parent / "lexicon.toml"


@lru_cache(maxsize=4)
def general_lexicon(
    path: Path = LEXICON_FILE, *, english: bool = True
) -> tuple[tuple[str, ...], ...]:
    """Return the lexicon's synonym groups (official word first), read once per process.

    `english=False` leaves out the English words and phrases: with the semantic signal on,
    English questions are matched by meaning, and rewriting their words into Chinese ones
    ("permit" → 许可证) only misleads the word features (docs/matching.md has the figures).
    """
    if not path.is_file():
        return ()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    groups = []
    for group in data.get("groups", []):
        if not isinstance(group, list):
            continue
        words = tuple(
            word
            for word in group
            if isinstance(word, str) and word.strip() and (english or has_cjk(word))
        )
        if len(words) >= 2:
            groups.append(words)
    return tuple(groups)
