"""Reading the dashboard's pages in the e2e tests: the text and attributes of the elements that
carry a `data-testid`, so that a change of layout does not break a test and a wrong figure does."""

from __future__ import annotations

import re
from html.parser import HTMLParser

PASSWORD = "correct horse battery staple"
ADMIN_EMAIL = "finance@example.com"
AUDITOR_EMAIL = "auditor@example.com"
VOID_ELEMENTS = frozenset({"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


class PageIds(HTMLParser):
    """The text of every element with a data-testid (nested ones too), and its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[tuple[str, int | None]] = []  # (tag, index into found)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        index = None
        if "data-testid" in attributes:
            index = len(self.found)
            self.found.append((attributes["data-testid"], attributes, []))
        if tag not in VOID_ELEMENTS:
            self._open.append((tag, index))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            opened, _ = self._open.pop()
            if opened == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, index in self._open:
            if index is not None:
                self.found[index][2].append(data)


def elements(html: str, testid: str) -> list[tuple[str, dict[str, str]]]:
    """(text, attributes) of each element with `data-testid=testid`, in document order; the text
    with its whitespace collapsed."""
    parser = PageIds()
    parser.feed(html)
    return [(" ".join("".join(text).split()), attrs) for found, attrs, text in parser.found if found == testid]


def texts(html: str, testid: str) -> list[str]:
    return [text for text, _ in elements(html, testid)]


def text(html: str, testid: str) -> str:
    found = texts(html, testid)
    assert len(found) == 1, f"{testid}: {found}"
    return found[0]


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)
