"""The docs show pictures: the home page and every plugin page show at least one, every picture a page
shows exists and is small, and every committed picture is one that ``docs/make_pictures.py`` writes
(so the script that states how they were made can remake all of them)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
MAX_BYTES = 150 * 1024


def pictures(page: Path) -> list[Path]:
    """The local pictures a Markdown page shows, resolved against the page's folder."""
    return [(page.parent / target).resolve() for target in IMAGE.findall(page.read_text())
            if not target.startswith(("http:", "https:"))]


def test_home_and_every_plugin_page_show_a_picture_near_the_top():
    pages = [DOCS / "index.md", *sorted((DOCS / "plugins").glob("*.md"))]
    assert len(pages) >= 7
    for page in pages:
        shown = pictures(page)
        assert shown, f"{page.relative_to(ROOT)} shows no picture"
        first = page.read_text().find("![")
        assert first < 4000, f"{page.relative_to(ROOT)}: the first picture is not near the top (char {first})"


def test_every_shown_picture_exists_and_is_small():
    for page in DOCS.rglob("*.md"):
        for picture in pictures(page):
            assert picture.is_file(), f"{page.relative_to(ROOT)} shows {picture}, which does not exist"
            assert picture.stat().st_size <= MAX_BYTES, f"{picture.name} is {picture.stat().st_size} bytes"


def test_make_pictures_writes_every_committed_picture():
    script = (DOCS / "make_pictures.py").read_text()
    committed = sorted(p.name for p in (DOCS / "images").iterdir())
    assert committed, "docs/images is empty"
    missing = [name for name in committed if f'"{name}"' not in script]
    assert missing == [], f"docs/images holds pictures make_pictures.py does not write: {missing}"
