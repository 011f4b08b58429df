"""A synthetic knowledge base of any size, scaled up from the bundled one (knowledge/).

Each copy of an item is the same service in another district: its id, title and questions name
the district, so the matcher faces many near-duplicates, as a large city's knowledge base has.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import tomlkit

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED = REPO_ROOT / "knowledge"
DISTRICTS = (
    ("dongcheng", "东城区"),
    ("xicheng", "西城区"),
    ("nanshan", "南山区"),
    ("beihu", "北湖区"),
    ("gaoxin", "高新区"),
    ("jingkai", "经开区"),
    ("binhai", "滨海新区"),
    ("qingshan", "青山区"),
    ("lushan", "庐山区"),
    ("hexi", "河西区"),
    ("jiangbei", "江北区"),
    ("chengguan", "城关区"),
)


def write_synthetic_knowledge(target: Path, items: int = 1000, source: Path = BUNDLED) -> int:
    """Write a knowledge base of `items` items into `target`; return how many were written."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in ("departments.toml", "synonyms.toml"):
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    originals = sorted((source / "guides").glob("*.toml")) + sorted(
        (source / "disclosures").glob("*.toml")
    )
    written = 0
    for copy_number in range(len(DISTRICTS) + 1):
        for path in originals:
            if written >= items:
                return written
            folder = target / path.parent.name
            folder.mkdir(exist_ok=True)
            if copy_number == 0:
                shutil.copy(path, folder / path.name)
            else:
                slug, district = DISTRICTS[copy_number - 1]
                document = tomlkit.parse(path.read_text(encoding="utf-8"))
                data = tomllib.loads(path.read_text(encoding="utf-8"))
                new_id = f"{data['id']}-{slug}"
                document["id"] = new_id
                document["title"] = f"{data['title']}（{district}）"
                document["questions"] = [f"{district}{q}" for q in data["questions"]]
                document.pop("related", None)
                (folder / f"{new_id}.toml").write_text(tomlkit.dumps(document), encoding="utf-8")
            written += 1
    return written
