"""Read the report's CSV back the way a spreadsheet user would: by the header row in words of
each section."""

from __future__ import annotations

import csv
import io
from collections import defaultdict


def csv_sections(text: str) -> dict[str, list[dict[str, str]]]:
    """Rows by the value of their first column ("Totals", "Payment", "Payout", "Mismatch"),
    each a dict keyed by its section's header row."""
    sections: dict[str, list[dict[str, str]]] = defaultdict(list)
    header = None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            header = None
        elif header is None:
            header = row
        else:
            assert len(row) == len(header), (header, row)
            sections[row[0]].append(dict(zip(header, row, strict=True)))
    return sections


def csv_totals(text: str) -> dict[str, dict[str, str]]:
    return {row["Total"]: row for row in csv_sections(text)["Totals"]}
