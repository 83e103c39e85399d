"""Reading trace CSV files: tolerant of layout, strict on values.

Tolerant: a byte-order mark, CRLF line ends, blank lines, ``#`` comment lines,
spaces around values, upper-case or spaced header names, extra columns, any
column order, and a few alternative column names per format.
Strict: a value that does not parse is an error naming the file, the row and
the column, unless the caller asked to skip bad rows (then the row is
counted, never silently lost).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..trace import TraceError


def normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


@dataclass
class Row:
    """One data row, with its place in the file for error messages."""

    path: str
    line: int  # 1-based line number in the file
    index: int  # 1-based data row number (the header is not a row)
    values: dict[str, str]

    def where(self) -> str:
        return f"{os.path.basename(self.path)}, row {self.index} (line {self.line})"

    def error(self, message: str) -> TraceError:
        return TraceError(f"{self.where()}: {message}")

    def text(self, column: str, required: bool = True) -> str:
        value = self.values.get(column, "")
        if required and not value:
            raise self.error(f"column '{column}' is empty")
        return value

    def number(
        self,
        column: str,
        *,
        minimum: float | None = None,
        above: float | None = None,
        integer: bool = False,
        required: bool = True,
    ) -> float | None:
        raw = self.text(column, required)
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise self.error(f"column '{column}': {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise self.error(f"column '{column}': {raw!r} is not a finite number")
        if integer and value != int(value):
            raise self.error(f"column '{column}': {raw!r} is not a whole number")
        if minimum is not None and value < minimum:
            raise self.error(f"column '{column}': {raw!r} is below {minimum:g}")
        if above is not None and value <= above:
            raise self.error(f"column '{column}': {raw!r} must be above {above:g}")
        return value

    def timestamp(self, column: str) -> float:
        """Seconds: either a number of seconds or an ISO date-time (taken as UTC when it has no zone)."""
        raw = self.text(column)
        try:
            return float(raw)
        except ValueError:
            pass
        try:
            moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise self.error(f"column '{column}': {raw!r} is neither seconds nor a date-time like 2017-10-01 12:00:00") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.timestamp()


def read_header(path: str) -> list[str]:
    """The normalised column names of a CSV file (first non-blank, non-comment line)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        for line in f:
            if line.strip() and not line.lstrip().startswith("#"):
                return [normalise(c) for c in next(csv.reader([line]))]
    raise TraceError(f"{os.path.basename(path)}: the file is empty (no header row)")


def rows(path: str, aliases: dict[str, tuple[str, ...]], required: tuple[str, ...]) -> Iterator[Row]:
    """Data rows with columns renamed to their canonical names.

    ``aliases`` maps a canonical column name to other names it may have.
    A missing required column is an error about the header, before any row.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        header_line = 0
        number = 0
        for cells in reader:
            if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [normalise(c) for c in cells]
                header_line = reader.line_num
                rename = _renames(header, aliases)
                missing = [c for c in required if c not in rename.values()]
                if missing:
                    raise TraceError(
                        f"{os.path.basename(path)}: line {header_line}: header lacks column(s) {', '.join(missing)} "
                        f"(found: {', '.join(header)})"
                    )
                continue
            number += 1
            if len(cells) != len(header):
                yield Row(path, reader.line_num, number, {"__bad__": f"has {len(cells)} fields, the header has {len(header)}"})
                continue
            yield Row(path, reader.line_num, number, {rename[h]: c.strip() for h, c in zip(header, cells) if h in rename})
        if header is None:
            raise TraceError(f"{os.path.basename(path)}: the file is empty (no header row)")


def _renames(header: list[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, str]:
    rename: dict[str, str] = {}
    for canonical, others in aliases.items():
        for name in (canonical, *others):
            if name in header:
                rename[name] = canonical
                break
    return rename


def check_shape(row: Row) -> None:
    if "__bad__" in row.values:
        raise row.error(row.values["__bad__"])
