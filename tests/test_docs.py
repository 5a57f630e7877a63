"""The docs name code that exists: every `name` linked to a .py file is defined in that file."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
# [`name`](path.py) or [`a`, `b`](path.py)
LINK = re.compile(r"\[((?:`[^`]+`(?:,\s*)?)+)\]\(([^)#\s]+\.py)\)")


def _links(doc: Path):
    for m in LINK.finditer(doc.read_text()):
        for name in re.findall(r"`([^`]+)`", m.group(1)):
            if "/" not in name and not name.endswith(".py"):  # a file's own name links to itself
                yield name, (doc.parent / m.group(2)).resolve()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_linked_functions_exist(doc):
    missing = []
    for name, target in _links(doc):
        short = name.split(".")[-1]
        defined = re.compile(rf"^\s*(def|class)\s+{re.escape(short)}\b|^\s*{re.escape(short)}\s*[:=]", re.M)
        if not target.exists() or not defined.search(target.read_text()):
            missing.append(f"{name} in {target.relative_to(REPO) if target.is_relative_to(REPO) else target}")
    assert not missing, f"{doc.name} names code that is not there: {missing}"


def test_the_check_sees_links():
    """The pattern finds the links it checks (a check that finds nothing proves nothing)."""
    assert sum(1 for _ in _links(REPO / "docs" / "deeplab.md")) > 30
