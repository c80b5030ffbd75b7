"""A CSV body read as it arrives: bytes in, records (their first line number and cells) out.

The body is never held whole: each chunk is decoded (UTF-8; a byte-order mark is skipped),
split into lines, and a record is complete at the end of a line outside a quoted field
(RFC 4180: a quoted field, one whose first character is a quote, may hold line breaks; a quote
inside it is doubled; a quote elsewhere is a stray one, which ends nothing). A record without
quotes is split on commas; one with quotes goes through the `csv` module in strict mode, so a
malformed quoted field is a refused record rather than a guess. A record
longer than `max_record_chars` (an unclosed quote swallowing the rest of the file) stops the
read: that is the one way a record could otherwise grow without bound.
"""

import codecs
import csv
from collections.abc import Iterator
from typing import NamedTuple

from models.text import storable

# PostgreSQL cannot store it in text (models/text.py); refused as GraphQL refuses it.
NUL = "a field must not hold a NUL character"


class CsvStreamError(Exception):
    """The body cannot be read further (bad encoding, an endless record); `line` is where."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class Record(NamedTuple):
    line: int  # the line it starts on, 1 for the header
    cells: list[str] | None  # None when the record is malformed (`error` says why)
    error: str | None = None


class CsvStream:
    def __init__(self, max_record_chars: int) -> None:
        self.max_record_chars = max_record_chars
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._carry = ""  # the last line of the body so far, not yet ended
        self._record: list[str] = []  # the lines of a record whose quotes are still open
        self._record_chars = 0
        self._inside = False  # the record so far ends inside a quoted field
        self._lines = 0  # lines ended so far
        self._start = 1

    def feed(self, chunk: bytes, final: bool = False) -> Iterator[Record]:
        """The records that `chunk` completes (all that is left, when `final`). Bytes that are
        not UTF-8 stop the read: the records of the lines before them come out first."""
        failure: UnicodeDecodeError | None = None
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as error:  # the lines before it are still good
            failure, final = error, False
            text = error.object[: error.start].decode("utf-8", "replace").removeprefix("\ufeff")
        lines = (self._carry + text).split("\n")
        self._carry = "" if final else lines.pop()
        for physical in lines:
            self._lines += 1
            if not self._record and '"' not in physical:  # the common case: no quotes
                line = physical[:-1] if physical.endswith("\r") else physical
                if "\x00" in line:
                    yield Record(self._lines, None, NUL)
                elif line:
                    yield Record(self._lines, line.split(","))
                continue
            if not self._record:
                self._start = self._lines
            # As it is: a CRLF inside a quoted field is data; csv drops the record's last CR.
            self._record.append(physical)
            self._record_chars += len(physical) + 1
            self._inside = _inside_after(physical, self._inside)
            if not self._inside:
                yield self._parse("\n".join(self._record), self._start)
                self._record, self._record_chars = [], 0
            elif self._record_chars > self.max_record_chars:
                self._too_long(self._start)
        if len(self._carry) > self.max_record_chars:
            self._too_long(self._lines + 1)
        if failure is not None:
            at = self._lines + 1
            bad = failure.object[failure.start]
            raise CsvStreamError(
                f"the file is not UTF-8 text (line {at}: {failure.reason} at byte"
                f" 0x{bad:02x}); save it as UTF-8 (CSV UTF-8 in spreadsheets)",
                at,
            )
        if final and self._record:
            raise CsvStreamError(
                f"line {self._start}: a quoted field is never closed (the file ends inside it)",
                self._start,
            )

    def _too_long(self, line: int) -> None:
        raise CsvStreamError(
            f"line {line}: a record longer than {self.max_record_chars} characters"
            " (a quote never closed?)",
            line,
        )

    @staticmethod
    def _parse(text: str, line: int) -> Record:
        if not storable(text):
            return Record(line, None, NUL)
        try:
            rows = list(csv.reader([text], strict=True))
        except csv.Error as error:
            return Record(line, None, f"malformed CSV: {error}")
        if len(rows) != 1:
            return Record(line, None, "malformed CSV: a quote in an unquoted field")
        return Record(line, rows[0])


def _inside_after(line: str, inside: bool) -> bool:
    """Whether a record is inside a quoted field at the end of `line`, given whether it was at
    its start (only lines with a quote come here: a few, so a character loop is fine)."""
    field_start, closed = not inside, False
    for ch in line:
        if inside:
            if ch == '"':
                inside, closed = False, True
            continue
        if ch == '"' and (field_start or closed):  # opens a field, or `""` inside one
            inside = True
        elif ch == ",":
            field_start = True
        else:
            field_start = False
        closed = False
    return inside
