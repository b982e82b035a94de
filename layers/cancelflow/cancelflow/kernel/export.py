"""Exports as CSV a spreadsheet opens with Korean intact: the one set of format rules every
export follows (UTF-8 with a BOM, CRLF rows, KST times, text cells guarded against formulas),
written in chunks so memory stays flat however long the file is, and the port that stores it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from cancelflow.kernel.clock import KST

BOM = "\ufeff"
ROWS_PER_CHUNK = 500


class Exporter(Protocol):
    def upload(self, shop_id: str, name: str, chunks: Iterable[bytes]) -> str:
        """Store the chunks as one file of the shop's; returns a short-lived link to it."""
        ...


def text_cell(text: str) -> str:
    """Text a person or KCP wrote: a cell starting like a formula would run in Excel (CSV
    injection), so it is made text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def time_cell(moment: datetime | None) -> str:
    """A time as the file shows it: KST, to the second; empty when there is none."""
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[str | int]]) -> Iterator[bytes]:
    """The CSV in chunks of a few hundred rows: the BOM, the header, then every row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
