"""Read one source CSV into an Arrow table with the contract's types, strictly and totally.

Total means: whatever is wrong with a file, wherever it stands and however large it is, the
result is either a table or a `BadFileError` whose message names the blob and the line (and
the column where there is one). No parser exception ever escapes.

The fast path reads the file once into memory, checks the few things Arrow silently accepts
(quoting: a stray `"`, a quoted value not closed on its own line, a file cut inside quotes;
overlong values; a header-only file), then runs one `pyarrow.csv.read_csv` of the declared
columns as text, checks each typed column's exact form and casts it. A fault Arrow's parser
raises goes to the diagnosis, a chain of finders (overlong line, wrong column count, first cell
that does not cast, and a pure-Python reference scan as the last word); a finder that Arrow
cannot read the file with hands over to the next, so the file is rejected with the first faulty
line named. Only Arrow's own exceptions are turned into a rejection: any other exception is a
fault of this module and is not hidden.

The dialect is RFC 4180 on one line per record: a value is either unquoted (no `"`) or wholly
quoted (`""` for a quote inside); a line break inside a quoted value is rejected. A `\\r` counts as a line
break only in runs before or after a line's text (`\\r\\n`, `\\r\\r\\n`, `\\n\\r`); one between text, or a line of
nothing but `\\r`, is rejected, in a value or not (the parser would end a row there).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ARROW_TYPES: dict[str, pa.DataType] = {
    "integer": pa.int64(),
    "string": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "decimal": pa.decimal128(18, 2),
}

EXPECTED_TEXT: dict[str, str] = {
    "integer": "an integer",
    "string": "UTF-8 text",
    "date": "a date YYYY-MM-DD",
    "timestamp": "a timestamp YYYY-MM-DD HH:MM:SS",
    "decimal": "a decimal with at most 2 places (18 digits)",
}

TEXT_CHECKED = frozenset({"integer", "timestamp", "decimal", "date"})
"""Types Arrow's parser reads more leniently than the contract allows ('0x10' as 16, a bare date as
midnight, '1e2' as 100, ' 2026-11-19' with its space): every column is read as text, these are checked
against the exact format (vectorised), then cast."""

UTF8_BOM = b"\xef\xbb\xbf"
MAX_SHOWN_VALUE = 60
BLOCK_BYTES = 1 << 20
"""Arrow's parse block (its default `block_size`); a line must fit in one, so a longer line is rejected (and named)."""
MAX_LINE_BYTES = BLOCK_BYTES // 2
MAX_VALUE_BYTES = 1 << 16
"""No contract column holds more than this; a longer value is a broken file, not data."""

_QUOTED_FIELD = rb'"(?:[^"\r\n]|"")*"'
_PLAIN_FIELD = rb'[^",\r\n]*'
_FIELD_RE = re.compile(rb"(?:" + _QUOTED_FIELD + rb"|" + _PLAIN_FIELD + rb")(?=,|$)")


class BadFileError(Exception):
    """This file breaks the contract; the message names the blob, the line and the column.

    `before`: for a fault on line N, the lines above N, parsed (None when no data row stands there): the
    caller's own rules (value rules) look there first, so the first faulty line is named."""

    def __init__(self, message: str, before: ParsedFile | None = None):
        super().__init__(message)
        self.before = before


@dataclass
class ParsedFile:
    table: pa.Table
    dropped_columns: list[str] = field(default_factory=list)
    data: bytes = b""

    def line_of_row(self, row: int) -> int:
        """The editor line (header = 1) of data row `row` (0-based)."""
        return physical_line(self.data, row + 2)


def read_strict_csv(path: Path, blob: str, columns: dict[str, str], use_threads: bool = True) -> ParsedFile:
    """Parse `path` (the content of `blob`) against `columns` {name: contract type}; raise BadFileError."""
    try:
        data = path.read_bytes()
    except OSError:
        raise  # the pipeline's own I/O problem, not the file's content: the caller reports it
    return _read_first_fault(data, blob, columns, use_threads)


def _read_first_fault(data: bytes, blob: str, columns: dict[str, str], use_threads: bool) -> ParsedFile:
    """`_read`; when it refuses the file naming line N, the lines above N are read alone: a fault there is
    named instead, being earlier (the checks run by kind, not by line: a cell that does not parse above an
    overlong value, a wrong cell count or a byte that is not UTF-8), else they become the fault's `before`."""
    try:
        return _read(data, blob, columns, use_threads)
    except pa.ArrowException as exc:  # the parser refused the file: name its first faulty line
        fault = BadFileError(diagnose(data, blob, columns, f"{type(exc).__name__}: {exc}"))
    except BadFileError as exc:
        fault = exc
    named = re.match(re.escape(blob) + r" line ([0-9]+)", str(fault))
    if named is not None:
        fault.before = _lines_before(data, blob, columns, int(named.group(1)))
    raise fault from None


def _read(data: bytes, blob: str, columns: dict[str, str], use_threads: bool) -> ParsedFile:
    header = _read_header(data, blob)
    _check_header(header, blob, columns)
    line_break = data.find(b"\n")
    if line_break == -1 or not data[line_break + 1:].strip(b"\r\n"):  # the header alone, with or without its \n
        raise BadFileError(f"{blob} line 2: the file has a header but no data rows")
    faults = [first_bad_quoting(data, header) if b'"' in data else None]  # memchr: no quotes cost nothing here
    if b"\r" in data:  # memchr: a file of \n line breaks costs nothing here
        line = first_inner_carriage_return(data)  # the parser would end a row there: rows and lines would part
        faults.append(None if line is None else (line, ": a carriage return inside the line"))
    dropped = [name for name in header if name not in columns]
    if dropped:  # the parser never decodes them: the file must still be UTF-8 text (contract 2)
        faults.append(_first_not_utf8(data, header))
        if len(data) > MAX_LINE_BYTES:  # nor checks their size: an over-long line would pass or not by where it stands
            faults.append(_first_overlong(data))
    found = [fault for fault in faults if fault is not None]
    if found:  # the earliest line (on one line, a quoting fault first: it decides the cells); the caller reads above it
        line, message = min(found, key=lambda fault: fault[0])
        raise BadFileError(f"{blob} line {line}{message}")
    # Arrow's defaults suit this dialect: no value holds a line break (`newlines_in_values` False; the quoting
    # check above refuses one), parse blocks of BLOCK_BYTES. With quoting and carriage returns checked above,
    # each non-empty line after the header is one row: a row's line is physical_line's.
    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(use_threads=use_threads),
        convert_options=_convert_options(columns, pa.string()),
    )
    parsed = ParsedFile(table=table, dropped_columns=dropped, data=data)
    _check_value_sizes(parsed, blob, columns)
    parsed.table = _exact_and_typed(parsed, blob, columns)
    return parsed


def _lines_before(data: bytes, blob: str, columns: dict[str, str], line: int) -> ParsedFile | None:
    """The lines above `line` read alone, or None when there are no data rows above it; a fault of theirs is
    raised instead, being the earlier one."""
    starts, _ = _line_bounds(data)
    if not 2 < line <= len(starts):  # the header's or the first row's fault; a line past the file's end is no line
        return None
    head = data[:int(starts[line - 1])]
    if not head[head.find(b"\n") + 1:].strip(b"\r\n"):
        return None  # only the header (and blank lines) above the faulty line
    return _read_first_fault(head, blob, columns, use_threads=False)


def _first_not_utf8(data: bytes, header: list[str]) -> tuple[int, str] | None:
    """(editor line, message tail naming the column) of the file's first byte that is not UTF-8, else None."""
    try:
        data.decode()
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        line = data.count(b"\n", 0, exc.start) + 1  # a quoting fault on this line is reported first (the caller's order)
        return line, _not_utf8_cell(data[start:len(data) if end == -1 else end].removesuffix(b"\r"), header)
    return None


def _not_utf8_cell(line: bytes, header: list[str]) -> str:
    """The message tail naming the column of the first cell of `line` that is not UTF-8 text."""
    try:
        cells = next(csv.reader([line.decode(errors="surrogateescape")]), [])
    except csv.Error:  # a carriage return inside the line: that fault, on the same line, is the one reported
        return ": the line is not UTF-8 text"
    for name, cell in zip(header, cells):
        if any("\udc80" <= char <= "\udcff" for char in cell):
            return f", column {name!r}: expected UTF-8 text, got {show_value(cell.encode(errors='surrogateescape'))}"
    return ": the line is not UTF-8 text"


def format_mask(text: pa.ChunkedArray | pa.Array, kind: str) -> pa.ChunkedArray | pa.Array | None:
    """False where a text value lacks the exact format of `kind` (null where the cell is empty); None when every
    value has it. Vectorised (Arrow kernels, no regex). A date's form is left to the cast, which accepts only
    YYYY-MM-DD of a real day, or of the year 0000."""
    if kind == "date":  # year 0000 casts, but is no year of the calendar (Python, Tableau: out of range)
        ok = pc.invert(pc.starts_with(text, "0000"))
    elif kind == "timestamp":
        ok = pc.and_(pc.equal(pc.binary_length(text), 19), pc.invert(pc.match_substring(text, "T")))
        ok = pc.and_(ok, pc.invert(pc.starts_with(text, "0000")))
    else:
        body = pc.if_else(pc.starts_with(text, "-"), pc.utf8_slice_codeunits(text, 1), text)
        if kind == "decimal":  # digits, at most one '.', with 1 or 2 digits after it and at least one before
            dots = pc.find_substring(body, ".")
            ok = pc.and_(
                pc.ascii_is_decimal(pc.replace_substring(body, ".", "")),
                pc.or_(pc.equal(dots, -1),
                       pc.and_(pc.greater(dots, 0), pc.less_equal(pc.subtract(pc.binary_length(body), dots), 3))),
            )
            ok = pc.and_(ok, pc.invert(pc.ends_with(body, ".")))
        else:
            ok = pc.ascii_is_decimal(body)
    return None if pc.all(ok, min_count=0).as_py() else ok  # nulls (empty cells) are not looked at


def _exact_and_typed(parsed: ParsedFile, blob: str, columns: dict[str, str]) -> pa.Table:
    """Check the text-read columns against their exact format, then cast them to the contract type;
    the first offending cell (in file order) rejects the file, naming line, column and value."""
    table = parsed.table
    worst: tuple[int, str, str] | None = None
    for name, kind in columns.items():
        if kind not in TEXT_CHECKED:
            continue
        text = parsed.table.column(name)
        try:
            cast = pc.cast(text, ARROW_TYPES[kind])
        except pa.ArrowInvalid:  # the first cell that does not cast or lacks the form (a day that does not exist)
            row = _first_uncastable(pc.cast(text.combine_chunks(), pa.binary()), kind)[0]
        else:
            mask = format_mask(text, kind)
            if mask is None:
                table = table.set_column(table.schema.get_field_index(name), name, cast)
                continue
            row = pc.index(mask, False).as_py()  # the first value of the wrong form (it casts: '+5', ' 5')
        if worst is None or row < worst[0]:
            worst = (row, name, f"expected {EXPECTED_TEXT[kind]}, got {show_value(text[row].as_py())}")
    if worst is not None:
        row, name, message = worst
        raise BadFileError(f"{blob} line {parsed.line_of_row(row)}, column {name!r}: {message}")
    return table


def _convert_options(columns: dict[str, str], read_as: pa.DataType) -> pacsv.ConvertOptions:
    """The declared columns only, in their declared order, each read as `read_as`; only an empty cell is null
    ('NA', 'NULL', 'nan' in a number column are errors, not silent nulls)."""
    return pacsv.ConvertOptions(
        column_types=dict.fromkeys(columns, read_as),
        include_columns=list(columns),
        null_values=[""],
        strings_can_be_null=True,
    )


def _read_header(data: bytes, blob: str) -> list[str]:
    first_line = data[: data.find(b"\n")] if b"\n" in data[:MAX_LINE_BYTES] else data[:MAX_LINE_BYTES]
    first_line = first_line.removeprefix(UTF8_BOM).removesuffix(b"\r")  # counted as every line: without its break
    if not first_line.strip():
        raise BadFileError(f"{blob} line 1: the file is empty; expected a header row")
    if len(first_line) >= MAX_LINE_BYTES:
        raise BadFileError(f"{blob} line 1: the header is longer than {MAX_LINE_BYTES:,} bytes")
    try:
        text = first_line.decode()
    except UnicodeDecodeError:
        raise BadFileError(f"{blob} line 1: the header is not UTF-8 text") from None
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise BadFileError(f"{blob} line 1: the header is not a CSV row ({exc})") from None


def _check_header(header: list[str], blob: str, columns: dict[str, str]) -> None:
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise BadFileError(f"{blob} line 1: duplicate column(s) {', '.join(map(repr, duplicates))}")
    missing = [name for name in columns if name not in header]
    if missing:
        unknown = [name for name in header if name not in columns]
        hint = f" (found unknown column(s) {', '.join(map(repr, unknown))} - renamed?)" if unknown else ""
        raise BadFileError(f"{blob} line 1, column {missing[0]!r}: missing column(s) "
                           f"{', '.join(map(repr, missing))}{hint}")


def _check_value_sizes(parsed: ParsedFile, blob: str, columns: dict[str, str]) -> None:
    """The first (in file order, over every string column) value longer than MAX_VALUE_BYTES rejects the file."""
    worst: tuple[int, str, int] | None = None
    for name, kind in columns.items():
        if kind != "string":
            continue
        lengths = pc.binary_length(parsed.table.column(name))
        row = pc.index(pc.greater(lengths, MAX_VALUE_BYTES), True).as_py()  # -1: none (empty cells are null)
        if row >= 0:
            if worst is None or row < worst[0]:
                worst = (row, name, lengths[row].as_py())
    if worst is not None:
        row, name, size = worst
        raise BadFileError(f"{blob} line {parsed.line_of_row(row)}, column {name!r}: a value of {size:,} bytes "
                           f"(at most {MAX_VALUE_BYTES:,} allowed)")


# --- line geometry ------------------------------------------------------------------------------


def _line_bounds(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets (end excludes '\\n' and a trailing '\\r') of every physical line."""
    array = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(array == ord("\n"))
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(array)]))
    if len(array):  # a \r before the end is the line break's (an empty first line's wraps to the last byte)
        ends = ends - (array[ends - 1] == ord("\r"))
    return starts, ends


def physical_line(data: bytes, row_number: int) -> int:
    """Editor line of the `row_number`-th non-empty line (header = 1), since the CSV reader skips blank lines."""
    starts, ends = _line_bounds(data)
    non_empty = np.flatnonzero(ends > starts)
    if row_number <= len(non_empty):  # the parser also ends a row at a bare \r: more rows than lines
        return int(non_empty[row_number - 1]) + 1
    return row_number


def first_inner_carriage_return(data: bytes) -> int | None:
    """Editor line of the first line holding a \\r the parser takes for a line break, else None: a \\r between
    text (`a\\rb`), or a line of nothing but \\r (the parser skips it: the rows would no longer match the lines).
    A run of \\r after a line's text (`a\\r\\r\\n`, a CRLF file converted once more) only ends its row; one
    before it (`\\ra`, as \\n\\r line breaks leave) is an empty line the parser skips."""
    array = np.frombuffer(data, dtype=np.uint8)
    returns = np.flatnonzero(array == ord("\r"))
    if np.all(array[np.minimum(returns + 1, len(array) - 1)] == ord("\n")):  # \r\n line breaks only: none
        return None
    starts, ends = _line_bounds(data)
    line_of = np.searchsorted(starts, returns, side="right") - 1
    run_begins = np.concatenate(([True], np.diff(returns) != 1))  # each \r's run of consecutive \r begins where
    leading = returns[np.flatnonzero(run_begins)][np.cumsum(run_begins) - 1] == starts[line_of]  # its line does
    after = returns + 1
    text_follows = (after < ends[line_of]) & (array[np.minimum(after, len(array) - 1)] != ord("\r"))
    inner = (returns < ends[line_of]) & np.where(leading, after == ends[line_of], text_follows)
    faulty = line_of[inner]
    return int(faulty[0]) + 1 if len(faulty) else None


def first_bad_quoting(data: bytes, header: list[str]) -> tuple[int, str] | None:
    """(editor line, message tail) of the first line whose quoting breaks the dialect, else None.

    Vectorised over every `"` in the file (exports often quote every text value): a line must hold
    an even number of quotes; an opening quote must start a value (after a comma or at the line's
    start) or be the second of a `""` pair; a closing quote must end a value (before a comma or
    the line's end) or be the first of a `""` pair. Only the faulty line is then read in Python,
    to name the column.
    """
    array = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(array == ord('"'))
    starts, ends = _line_bounds(data)
    if data.startswith(UTF8_BOM):
        starts = starts.copy()
        starts[0] = len(UTF8_BOM)
    per_line = np.diff(np.searchsorted(quotes, starts), append=len(quotes))  # how many quotes each line holds
    line_of = np.repeat(np.arange(len(starts)), per_line)
    # Before the first odd line every line is even, so there a quote's parity in the file is its parity in its line:
    # even quotes open a value, odd ones close it.
    opening, closing = quotes[0::2], quotes[1::2]
    following = array[(closing + 1) % len(array)]  # the file's last byte ends its line
    legal = np.empty(len(quotes), dtype=bool)
    # offset 0 starts line 1; a \r before the quote ends an empty line (\n\r line breaks) or is refused as inner
    legal[0::2] = (opening == starts[line_of[0::2]]) | np.isin(array[opening - 1], (ord(","), ord("\r")))
    legal[1::2] = (closing + 1 == ends[line_of[1::2]]) | (following == ord(","))
    escaped = np.diff(quotes)[1::2] == 1  # a closing quote right before the next opening one: `""` in a value
    legal[2::2] |= escaped
    legal[1::2][:len(escaped)] |= escaped
    for i in np.flatnonzero(~legal[1::2] & (following == ord("\r"))):  # rare: a line that ends in \r\r\n
        end = ends[line_of[2 * i + 1]]
        legal[2 * i + 1] = data.count(b"\r", closing[i], end) == end - closing[i] - 1  # only \r after it on its line
    faulty = per_line % 2 == 1
    faulty[line_of[~legal]] = True
    if not faulty.any():
        return None
    index = int(np.argmax(faulty))  # the first faulty line
    line = bytes(data[starts[index]:ends[index]])
    column, start = _bad_field(line)
    name = f", column {header[column]!r}" if column < len(header) and index > 0 else ""
    if _UNCLOSED_RE.fullmatch(line, start):  # from an opening quote to the line's end: the line is odd
        why = "a quoted value is not closed on its line (a line break inside quotes, or the file is cut)"
    else:
        why = "a stray '\"' (a quote may only enclose a whole value; write it as \"\" inside one)"
    return index + 1, f"{name}: {why}"


_UNCLOSED_RE = re.compile(rb'"(?:[^"]|"")*')


def _bad_field(line: bytes) -> tuple[int, int]:
    """(index, start offset) of the first field of a faulty `line` that is neither plain nor properly quoted
    (a faulty line always has one; were it not so, its last field)."""
    position, column = 0, 0
    while True:
        match = _FIELD_RE.match(line, position)
        if match is None or match.end() == len(line):
            return column, position
        position = match.end() + 1  # past the comma
        column += 1


# --- diagnosis: only for a file the fast path could not read ------------------------------------


def diagnose(data: bytes, blob: str, columns: dict[str, str], parser_message: str) -> str:
    """Name the first faulty line of a file the typed read rejected; never raises."""
    finders: list[Callable[[], str | None]] = [
        lambda: _first_overlong_line(data, blob),
        lambda: _first_malformed_row(data, blob),
        lambda: _first_bad_cell(data, blob, columns),
        lambda: _reference_scan(data, blob, columns),
    ]
    for finder in finders:
        try:
            found = finder()
        except pa.ArrowException:  # Arrow cannot read the file this way: the next finder can
            continue
        if found is not None:
            return found
    return f"{blob}: the file could not be read as CSV ({_clip(parser_message)}); no single line could be named"


def _first_overlong_line(data: bytes, blob: str) -> str | None:
    found = _first_overlong(data)
    return None if found is None else f"{blob} line {found[0]}{found[1]}"


def _first_overlong(data: bytes) -> tuple[int, str] | None:
    """(editor line, message tail) of the first line longer than MAX_LINE_BYTES, else None."""
    starts, ends = _line_bounds(data)
    too_long = np.flatnonzero(ends - starts > MAX_LINE_BYTES)
    if len(too_long) == 0:
        return None
    index = int(too_long[0])
    return index + 1, f": the line is {int(ends[index] - starts[index]):,} bytes long (at most {MAX_LINE_BYTES:,} allowed)"


def _first_malformed_row(data: bytes, blob: str) -> str | None:
    try:
        data.decode()
    except UnicodeDecodeError:
        return None  # pyarrow's row handler cannot show such a row; the next finders name the line
    found: list[tuple[int, int, int]] = []

    def handler(row: pacsv.InvalidRow) -> str:
        found.append((row.number, row.expected_columns, row.actual_columns))
        return "error"

    try:
        pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False),  # row numbers need one thread
            parse_options=pacsv.ParseOptions(invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(include_columns=[]),  # count the cells, convert none
        )
    except pa.ArrowInvalid:
        pass
    if not found:
        return None
    row_number, expected, actual = found[0]
    return f"{blob} line {physical_line(data, row_number)}: expected {expected} columns, got {actual}"


def _first_bad_cell(data: bytes, blob: str, columns: dict[str, str]) -> str | None:
    raw = pacsv.read_csv(pa.BufferReader(data), convert_options=_convert_options(columns, pa.binary()))
    worst: tuple[int, str, str] | None = None  # (row index, column, message)
    for name, kind in columns.items():
        found = _first_uncastable(raw.column(name).combine_chunks(), kind)
        if found is not None and (worst is None or found[0] < worst[0]):
            row, value = found
            worst = (row, name, f"expected {EXPECTED_TEXT[kind]}, got {show_value(value)}")
    if worst is None:
        return None
    row, name, message = worst
    return f"{blob} line {physical_line(data, row + 2)}, column {name!r}: {message}"


def _first_uncastable(raw: pa.Array, kind: str) -> tuple[int, bytes] | None:
    """Index and raw value of the first cell that is not a value of `kind`; bisection keeps it vectorised."""
    if _casts(raw, kind):
        return None
    low, high = 0, len(raw)  # invariant: raw[low:high] holds the first bad cell
    while high - low > 1:
        middle = (low + high) // 2
        if _casts(raw.slice(low, middle - low), kind):
            low = middle
        else:
            high = middle
    return low, raw[low].as_py()


def _casts(raw: pa.Array, kind: str) -> bool:
    try:
        text = pc.cast(raw, pa.string())  # validates UTF-8
        if kind in TEXT_CHECKED and format_mask(text, kind) is not None:
            return False
        pc.cast(text, ARROW_TYPES[kind])
    except pa.ArrowInvalid:
        return False
    return True


def _reference_scan(data: bytes, blob: str, columns: dict[str, str]) -> str | None:
    """Line by line in plain Python: the last word when the vectorised finders name nothing."""
    lines = data.removeprefix(UTF8_BOM).split(b"\n")
    header: list[str] | None = None
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.removesuffix(b"\r")
        if not line:
            continue
        text_only = line.strip(b"\r")  # runs of \r around the line's text: empty lines and row ends to the parser
        if not text_only or b"\r" in text_only:
            return f"{blob} line {number}: a carriage return inside the line"
        line = text_only
        if len(line) > MAX_LINE_BYTES:
            return f"{blob} line {number}: the line is {len(line):,} bytes long (at most {MAX_LINE_BYTES:,} allowed)"
        try:
            text = line.decode()
        except UnicodeDecodeError:
            return f"{blob} line {number}{_not_utf8_cell(line, header or [])}"
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            return f"{blob} line {number}: not a CSV row ({exc})"
        if header is None:
            header = cells
            positions = {name: header.index(name) for name in columns if name in header}  # set before any row
            continue
        if len(cells) != len(header):
            return f"{blob} line {number}: expected {len(header)} columns, got {len(cells)}"
        for name, kind in columns.items():
            value = cells[positions[name]]
            if value and not _python_parses(value, kind):
                return f"{blob} line {number}, column {name!r}: expected {EXPECTED_TEXT[kind]}, got {show_value(value)}"
    return None


EXACT_TEXT: dict[str, re.Pattern[str]] = {
    "integer": re.compile(r"-?[0-9]+"),
    "date": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    "timestamp": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"),
    "decimal": re.compile(r"-?[0-9]+(\.[0-9]{1,2})?"),
}
"""The exact text of each type, as the pure-Python reference reads it (format_mask is the fast twin)."""


def _python_parses(value: str, kind: str) -> bool:
    pattern = EXACT_TEXT.get(kind)
    if pattern is not None and pattern.fullmatch(value) is None:
        return False
    try:
        if kind == "integer":
            return -(2**63) <= int(value) < 2**63
        if kind == "date":
            dt.date.fromisoformat(value)
        elif kind == "timestamp":
            dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        elif kind == "decimal":
            return abs(decimal.Decimal(value)) < decimal.Decimal(10) ** 16
    except (ValueError, decimal.InvalidOperation):
        return False
    return True


def show_value(value: bytes | str | None) -> str:
    if value is None:
        return "an empty value"
    text = value.decode(errors="backslashreplace") if isinstance(value, bytes) else value
    if len(text) > MAX_SHOWN_VALUE:
        text = text[:MAX_SHOWN_VALUE] + f"... ({len(text):,} characters)"
    return repr(text)


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
