"""What the code and the docs cite exists in the repository: a comment that sends a reader to a
document, or a page that names a module, points at something they can open."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("ledger", "commands", "projections", "adapters", "web", "tests", "bench")
CITED_DOC = re.compile(r"[\w./-]*[\w-]+\.md\b")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE_PATH = re.compile(r"`((?:ledger|commands|projections|adapters|web|tests|bench|docs)/[\w/.-]+\.(?:py|md))`")


def _markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _cited_docs(text: str) -> set[str]:
    return set(CITED_DOC.findall(text))


def _missing(cited: str, near: Path) -> bool:
    """A cited page is found from the repository's root, beside the citing file, or, named bare,
    anywhere in the repository."""
    if (ROOT / cited).exists() or (near.parent / cited).exists():
        return False
    return "/" in cited or not any(ROOT.glob(f"**/{cited}"))


@pytest.mark.parametrize("package", SOURCES)
def test_every_document_a_source_file_cites_is_in_the_repository(package: str) -> None:
    missing = {
        f"{path.relative_to(ROOT)}: {cited}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != Path(__file__).resolve()  # its own example below cites missing pages on purpose
        for cited in _cited_docs(path.read_text())
        if _missing(cited, path)
    }
    assert sorted(missing) == []


def test_every_link_and_source_path_in_the_docs_exists() -> None:
    missing = []
    for page in _markdown_pages():
        text = page.read_text()
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+:", target) and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)}: {target}")
        missing += [f"{page.relative_to(ROOT)}: {p}" for p in CODE_PATH.findall(text) if not (ROOT / p).exists()]
    assert missing == []


def test_the_check_finds_a_citation_of_a_page_that_is_not_there(tmp_path: Path) -> None:
    citing = tmp_path / "module.py"
    citing.write_text('"""The rule of DESIGN.md, see docs/architecture.md and docs/nowhere.md."""\n')
    cited = _cited_docs(citing.read_text())
    assert cited == {"DESIGN.md", "docs/architecture.md", "docs/nowhere.md"}
    assert {c for c in cited if _missing(c, citing)} == {"DESIGN.md", "docs/nowhere.md"}
