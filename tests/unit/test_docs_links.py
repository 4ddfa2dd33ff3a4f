"""The README and docs/ link to each other: every relative link must land on a file, and
every #anchor on a heading of that file (GitHub's anchor rule), so that moving a section
cannot leave a dead link behind. Also: the README stays short, opens with its two commands,
and names the folders of the package with the process that runs each."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def test_every_relative_link_lands() -> None:
    assert len(PAGES) > 5
    broken = []
    for page in PAGES:
        for target in LINK.findall(FENCE.sub("", page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            landing = (page.parent / path).resolve() if path else page
            if not landing.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and landing.suffix == ".md" and anchor not in _anchors(landing):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_the_readme_is_short_and_maps_the_folders() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 420
    assert "bash scripts/test.sh" in text.split("## ")[0]
    layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    package = ROOT / "kinesis_source"
    folders = [package, *(p for p in package.rglob("*") if (p / "__init__.py").is_file())]
    for folder in folders:
        line = next((x for x in layout.splitlines() if x.strip().startswith(folder.name + "/")), "")
        assert re.search(r"\b(driver|executor|both)\b", line), f"the layout misses {folder.name}/"
