"""What a person may never read on an admin page, a CSV or an e-mail (issue 15): an amount in
GoCardless' minor units, a floating-point amount string, an amount without its currency, or
a status, cause or action code instead of words.

``findings(html, codes=…, minor=…)`` returns what is wrong on one page, each as a short
sentence with the offending text, so a failing test names the page and the words to fix.

What counts as "shown": the page's visible text. Attributes are not shown (a GoCardless code
in a ``title`` tooltip is the intended place for it), nor are ``<script>``/``<style>``, nor
the inside of an element with the class ``mlc-raw``: a stored webhook body shown verbatim as
the evidence of what a provider sent (dj-stripe's webhook log), labelled as such on its page.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never shown as text; elements that end a table cell or a field.
_HIDDEN = {"script", "style", "title", "template", "noscript"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}
_CELL = {"td", "th", "li", "dd", "option", "p", "h1", "h2", "h3", "label", "a", "span", "div",
         "strong", "b", "em"}

# 181500.0 / -480.0: a float's repr (one decimal place), or a long tail of places.
FLOAT = re.compile(r"(?<![\w.,:/-])-?\d+\.(?:\d|\d{3,})(?![\w.,%]| %)")
# Names that are not ours to translate: Django's password hasher, shown as is on a login's page.
NOT_CODES = {"pbkdf2_sha256"}
# 1452.00 / 12,883.10 with no currency before it. Allowed: "EUR 12,883.10", "-EUR 12.00".
BARE_AMOUNT = re.compile(r"(?<![\w.,:/-])-?\d{1,3}(?:,\d{3})*\.\d{2}(?![\w.,%])|"
                         r"(?<![\w.,:/-])-?\d{4,}\.\d{2}(?![\w.,%])")
CURRENCY_BEFORE = re.compile(r"(?:^|[\s(>\u2013-])-?[A-Z]{3} $")
# snake_case codes (paid_out, refer_to_payer) and dotted actions (collection.attempt_paid_out).
SNAKE = re.compile(r"(?<![\w@/.:-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w@/:-])")
DOTTED = re.compile(r"(?<![\w@/.:-])[a-z]+(?:\.[a-z][a-z0-9_]*)+(?![\w@/:-])")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.cells: list[str] = []
        self._hidden = 0
        self._raw_depth: list[int] = []
        self._depth = 0
        self._cells: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        self._depth += 1
        classes = (dict(attrs).get("class") or "").split()
        if tag in _HIDDEN:
            self._hidden += 1
        if "mlc-raw" in classes:
            self._raw_depth.append(self._depth)
        if tag in _CELL:
            self._cells.append([])

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if tag in _HIDDEN and self._hidden:
            self._hidden -= 1
        if self._raw_depth and self._raw_depth[-1] == self._depth:
            self._raw_depth.pop()
        self._depth -= 1
        if tag in _CELL and self._cells:
            self.cells.append(" ".join("".join(self._cells.pop()).split()))

    def handle_data(self, data):
        if self._hidden or self._raw_depth:
            return
        self.text.append(data)
        for cell in self._cells:
            cell.append(data)


def visible(html: str) -> tuple[str, list[str]]:
    """The page's visible text, and the text of each cell-like element (a table cell, an
    option, a link, a read-only field …)."""
    page = _Page()
    page.feed(html)
    return " ".join(" ".join(page.text).split()), page.cells


def text_findings(text: str, *, codes: set[str], minor: set[int], cells=()) -> list[str]:
    found: list[str] = []
    for match in FLOAT.finditer(text):
        found.append(f"float amount {match[0]!r}: …{_around(text, match)}…")
    for match in BARE_AMOUNT.finditer(text):
        if not CURRENCY_BEFORE.search(text[max(0, match.start() - 6):match.start()]):
            found.append(f"amount without currency {match[0]!r}: …{_around(text, match)}…")
    for value in minor:
        # "#1440" is a reference to a row, not an amount.
        for match in re.finditer(rf"(?<![\w.,:/#-]){value}(?![\w.,:/-])", text):
            found.append(f"minor units {value}: …{_around(text, match)}…")
    for pattern in (SNAKE, DOTTED):
        for match in pattern.finditer(text):
            if match[0] not in NOT_CODES and (match[0] in codes or pattern is SNAKE):
                found.append(f"code {match[0]!r}: …{_around(text, match)}…")
    for cell in cells:
        if cell in codes:
            found.append(f"code {cell!r} as a whole cell")
    return sorted(set(found))


def findings(html: str, *, codes: set[str], minor: set[int]) -> list[str]:
    text, cells = visible(html)
    return text_findings(text, codes=codes, minor=minor, cells=cells)


def _around(text: str, match) -> str:
    return text[max(0, match.start() - 40):match.end() + 40]
