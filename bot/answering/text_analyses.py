"""What the index makes of each text, kept between builds (the matcher's analysis cache).

Building an index normalises every phrasing, keyword and answer of the knowledge base, segments
the phrasings and keywords word by word and lists their character pairs and sound pairs: at
10,000 items that is most of a build. The result depends only on the text and on how texts are
analysed (the code, the general vocabulary, the pinyin and converter tables, the knowledge
base's synonyms and terms and the general lexicon), so it is kept on disk, in the folder of the
embedding cache, in one file (`text-analyses`, written as `cache_files` writes). The file
carries a fingerprint of how its texts were analysed: a file made otherwise is not used and the
texts are analysed afresh; a damaged file likewise (said once in the log). A build analyses only
the texts the file lacks, and then writes the file anew with exactly the texts of its knowledge
base.

A text's record: its normalised form; for the index's phrasings and keywords, its canonical form
(synonyms unified), its tokens (words, single characters, English stems; the Chinese and the
English ones apart), the keys of its character pairs and of its sound pairs, and the sound pairs
of its normalised form; for answers, the English tokens and character pairs of the normalised
form. Tokens are kept as strings and pairs as their keys, each file with its own list of them,
so that an index numbers them as it does when it analyses every text itself.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bot.answering.cache_files import (
    CacheFileError,
    join_texts,
    read_arrays,
    split_texts,
    warn_once,
    write_arrays,
)

log = logging.getLogger(__name__)

Ids = npt.NDArray[np.int64]
# A list's ids as read from a file are 32-bit; as just analysed, 64-bit.
Values = npt.NDArray[np.int32] | npt.NDArray[np.int64]

FILE_NAME = "text-analyses"
_FILE_KIND = "text analyses"

# How a text is analysed; the first character of its key.
INDEXED = "i"  # a phrasing or a keyword
ANSWER = "a"  # the beginning of an answer
NORMALISED = "n"  # normalised only (texts embedded for the semantic signal)

# The lists of ids each record has, and the vocabulary each list's ids point into.
TOKENS = "tokens"  # strings
PAIRS = "pairs"  # int64 keys of character pairs, ascending
SOUNDS = "sounds"  # int64 keys of sound pairs, ascending
LISTS = {
    "chinese": TOKENS,  # Chinese tokens of the canonical form
    "english": TOKENS,  # English tokens (of the canonical form; of an answer's normalised form)
    "pairs": PAIRS,  # character pairs (of the canonical form; of an answer's normalised form)
    "sounds": SOUNDS,  # sound pairs of the canonical form
    "raw_sounds": SOUNDS,  # sound pairs of the normalised form
}


def _pointers(counts: npt.NDArray[np.int64]) -> Ids:
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def gather(values: Values, pointers: Ids, rows: Ids) -> tuple[Values, Ids]:
    """Return the values of `rows` (each row's values[pointers[r]:pointers[r + 1]]) flat, in
    order, and the position in `rows` of each one."""
    starts = pointers[rows]
    counts = pointers[rows + 1] - starts
    total = int(counts.sum())
    owner = np.repeat(np.arange(rows.size, dtype=np.int64), counts)
    begins = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    index = np.repeat(starts - begins, counts) + np.arange(total, dtype=np.int64)
    return values[index], owner


@dataclass(frozen=True, slots=True)
class IdList:
    """One list of ids per row, flat: row r's ids are values[at[r]:at[r + 1]]."""

    values: Values
    at: Ids

    @classmethod
    def of(cls, values: Values, owner: Ids, rows: int) -> IdList:
        """From ids and the row of each (rows ascending)."""
        return cls(values.astype(np.int64), _pointers(np.bincount(owner, minlength=rows)))

    def take(self, rows: Ids) -> tuple[Values, Ids]:
        """The ids of `rows`, flat, and the position in `rows` of each one."""
        return gather(self.values, self.at, rows)


@dataclass(frozen=True, slots=True)
class AnalysisTable:
    """Texts' records in rows (see the module's doc). `keys` is left empty when a table read
    from a file needs no looking up (see `AnalysisCache.analyses`)."""

    keys: list[str]
    normalized: list[str]
    canonical: list[str]
    tokens: list[str]
    pairs: Ids
    sounds: Ids
    lists: dict[str, IdList]

    @classmethod
    def empty(cls) -> AnalysisTable:
        none = np.zeros(0, dtype=np.int64)
        lists = {name: IdList(none, np.zeros(1, dtype=np.int64)) for name in LISTS}
        return cls([], [], [], [], none, none, lists)

    def __len__(self) -> int:
        return len(self.normalized)

    def select(self, rows: Ids) -> AnalysisTable:
        """The table of `rows` only, with only the tokens and keys they use."""
        taken = {name: id_list.take(rows) for name, id_list in self.lists.items()}
        sizes = {TOKENS: len(self.tokens), PAIRS: self.pairs.size, SOUNDS: self.sounds.size}
        used = {vocabulary: np.zeros(size, dtype=bool) for vocabulary, size in sizes.items()}
        for name, (values, _) in taken.items():
            used[LISTS[name]][values] = True
        renumber = {v: np.cumsum(present) - 1 for v, present in used.items()}
        listed = rows.tolist()
        return AnalysisTable(
            keys=[self.keys[r] for r in listed],
            normalized=[self.normalized[r] for r in listed],
            canonical=[self.canonical[r] for r in listed],
            tokens=[self.tokens[t] for t in np.flatnonzero(used[TOKENS]).tolist()],
            pairs=self.pairs[used[PAIRS]],
            sounds=self.sounds[used[SOUNDS]],
            lists={
                name: IdList.of(renumber[LISTS[name]][values], owner, rows.size)
                for name, (values, owner) in taken.items()
            },
        )

    def extend(self, other: AnalysisTable) -> AnalysisTable:
        """This table with `other`'s rows after its own (other's ids renumbered)."""
        if not len(other):
            return self
        if not len(self):
            return other
        known = {token: n for n, token in enumerate(self.tokens)}
        other_tokens = np.asarray(
            [known.setdefault(token, len(known)) for token in other.tokens], dtype=np.int64
        ).reshape(len(other.tokens))
        pairs = np.union1d(self.pairs, other.pairs)
        sounds = np.union1d(self.sounds, other.sounds)
        mine = {
            TOKENS: np.arange(len(self.tokens), dtype=np.int64),
            PAIRS: np.searchsorted(pairs, self.pairs),
            SOUNDS: np.searchsorted(sounds, self.sounds),
        }
        theirs = {
            TOKENS: other_tokens,
            PAIRS: np.searchsorted(pairs, other.pairs),
            SOUNDS: np.searchsorted(sounds, other.sounds),
        }
        lists = {}
        for name, vocabulary in LISTS.items():
            own, new = self.lists[name], other.lists[name]
            lists[name] = IdList(
                np.concatenate((mine[vocabulary][own.values], theirs[vocabulary][new.values])),
                np.concatenate((own.at, own.at[-1] + new.at[1:])),
            )
        return AnalysisTable(
            keys=self.keys + other.keys,
            normalized=self.normalized + other.normalized,
            canonical=self.canonical + other.canonical,
            tokens=list(known),
            pairs=pairs,
            sounds=sounds,
            lists=lists,
        )


def table_from(
    keys: list[str],
    normalized: list[str],
    canonical: list[str],
    tokens: list[str],
    lists: dict[str, tuple[Ids, Ids]],
) -> AnalysisTable:
    """A table from its texts and, for each list, the ids (token ids into `tokens`; pair and
    sound keys themselves) with the row of each (rows ascending)."""
    count = len(keys)
    vocabularies: dict[str, Ids] = {}
    for vocabulary in (PAIRS, SOUNDS):
        found = [lists[name][0] for name, v in LISTS.items() if v == vocabulary]
        vocabularies[vocabulary] = np.unique(np.concatenate(found)).astype(np.int64)
    made = {}
    for name, (values, owner) in lists.items():
        vocabulary = LISTS[name]
        ids = values if vocabulary == TOKENS else np.searchsorted(vocabularies[vocabulary], values)
        made[name] = IdList.of(ids.astype(np.int64), owner, count)
    return AnalysisTable(
        keys=keys,
        normalized=normalized,
        canonical=canonical,
        tokens=tokens,
        pairs=vocabularies[PAIRS],
        sounds=vocabularies[SOUNDS],
        lists=made,
    )


class AnalysisCache:
    """The analyses of one folder's texts (None: nothing kept, every text analysed)."""

    def __init__(self, folder: Path | None) -> None:
        # The folder of the index's caches: this file, and the index's snapshot beside it.
        self.folder = folder
        self.path = folder / FILE_NAME if folder is not None else None
        self.hits = 0
        self.misses = 0

    def analyses(
        self,
        fingerprint: str,
        keys: Sequence[str],
        analyse: Callable[[list[str]], AnalysisTable],
    ) -> tuple[AnalysisTable, Ids]:
        """Return a table holding every key's record and the row of each key in it.

        `analyse` makes the records of the keys the file lacks (each key's first character says
        how). The file is then written anew with the records of `keys` only, and the row of
        each: a build over the same texts in the same order (a start after the first) takes
        the rows as they are, without looking its texts up one by one.
        """
        sequence = _sequence(keys)
        stored, same_rows = self._read(fingerprint, sequence, len(keys))
        if same_rows is not None:
            self.hits += len(keys)
            return stored, same_rows
        index = {key: row for row, key in enumerate(stored.keys)}
        rows = np.fromiter((index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        lacking = rows < 0
        missing = list(
            dict.fromkeys(k for k, lack in zip(keys, lacking.tolist(), strict=True) if lack)
        )
        self.misses += len(missing)
        self.hits += len(keys) - int(lacking.sum())
        table = stored.extend(analyse(missing)) if missing else stored
        for offset, key in enumerate(missing):
            index[key] = len(stored) + offset
        if missing:
            rows = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
        if self.path is not None and sequence is not None:
            used = np.unique(rows)
            if used.size < len(table):
                table, rows = table.select(used), np.searchsorted(used, rows)
            self._write(fingerprint, table, sequence, rows)
        return table, rows

    def _read(
        self, fingerprint: str, sequence: str | None, count: int
    ) -> tuple[AnalysisTable, Ids | None]:
        """The file's table, and when it was written for these very keys, their rows (its keys
        are then not read: nothing is looked up, analysed or written)."""
        path = self.path
        if path is None or not path.is_file():
            return AnalysisTable.empty(), None
        try:
            data = read_arrays(path, _FILE_KIND, mapped=True)
            if data.meta.get("fingerprint") != fingerprint:
                log.info("text analyses in %s were made otherwise; analysing afresh", path)
                return AnalysisTable.empty(), None
            rows: Ids | None = None
            size = int(data.meta["count"])
            if sequence is not None and data.meta.get("sequence") == sequence:
                rows = data["rows"].astype(np.int64)
                if rows.shape != (count,) or (count and not 0 <= rows.min() <= rows.max() < size):
                    raise CacheFileError("its rows do not fit")
            table = AnalysisTable(
                keys=[] if rows is not None else split_texts(data["keys"], size),
                normalized=split_texts(data["normalized"], size),
                canonical=split_texts(data["canonical"], size),
                tokens=split_texts(data["tokens"], int(data.meta["tokens"])),
                pairs=data["pair_keys"].astype(np.int64),
                sounds=data["sound_keys"].astype(np.int64),
                lists={
                    name: IdList(data[name], data[f"{name}_at"].astype(np.int64)) for name in LISTS
                },
            )
            _check(table)
        except (OSError, CacheFileError, KeyError, TypeError, ValueError) as error:
            warn_once(
                log, path, f"text analyses in {path} are unreadable ({error}); analysing afresh"
            )
            return AnalysisTable.empty(), None
        return table, rows

    def _write(self, fingerprint: str, table: AnalysisTable, sequence: str, rows: Ids) -> None:
        assert self.path is not None
        texts = (table.keys, table.normalized, table.canonical, table.tokens)
        if any("\0" in text for column in texts for text in column):
            return  # (never for normalised text; a raw text with a NUL is analysed each time)
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "keys": join_texts(table.keys),
            "normalized": join_texts(table.normalized),
            "canonical": join_texts(table.canonical),
            "tokens": join_texts(table.tokens),
            "pair_keys": table.pairs,
            "sound_keys": table.sounds,
        }
        for name, id_list in table.lists.items():
            arrays[name] = id_list.values.astype(np.int32)
            arrays[f"{name}_at"] = id_list.at
        arrays["rows"] = rows.astype(np.int32)
        meta = {
            "fingerprint": fingerprint,
            "count": len(table),
            "tokens": len(table.tokens),
            "sequence": sequence,
        }
        try:
            write_arrays(self.path, _FILE_KIND, arrays, meta)
        except OSError as error:
            warn_once(log, self.path, f"text analyses {self.path} could not be written ({error})")


def _sequence(keys: Sequence[str]) -> str | None:
    """The SHA-1 (hex) of keys in order, or None when a key holds a NUL (never kept)."""
    joined = "\0".join(keys)
    if joined.count("\0") != max(len(keys) - 1, 0):
        return None
    return hashlib.sha1(joined.encode("utf-8"), usedforsecurity=False).hexdigest()


def _check(table: AnalysisTable) -> None:
    """Refuse a table whose pointers or ids do not fit its rows and vocabularies."""
    count = len(table.normalized)
    if len(table.canonical) != count or len(table.keys) not in (0, count):
        raise CacheFileError("its columns differ in length")
    sizes = {TOKENS: len(table.tokens), PAIRS: table.pairs.size, SOUNDS: table.sounds.size}
    for name, id_list in table.lists.items():
        values, pointers = id_list.values, id_list.at
        if pointers.shape != (count + 1,) or pointers[0] != 0 or pointers[-1] != values.size:
            raise CacheFileError(f"its {name} pointers do not fit")
        if np.any(np.diff(pointers) < 0):
            raise CacheFileError(f"its {name} pointers go backwards")
        if values.size and (values.min() < 0 or values.max() >= sizes[LISTS[name]]):
            raise CacheFileError(f"its {name} ids do not fit")
    for keys in (table.pairs, table.sounds):
        if keys.size > 1 and np.any(np.diff(keys) <= 0):
            raise CacheFileError("its pair keys are not in order")
