"""Text from outside (file names, paths, messages that quote them) made safe to show and to
write into a spreadsheet.

- ``terminal_safe``: control characters are shown escaped the way Python's ``repr`` writes
  them (``\\n``, ``\\r``, ``\\t``, ``\\x1b``, ``\\u2028``), so a file name stays on its line
  and no escape sequence (colours, a window title, a bell, a cursor move) reaches the
  terminal. Escaped: C0 and C1 controls and DEL (Unicode category Cc), format characters such
  as the bidirectional overrides (Cf), the line and paragraph separators (Zl, Zp) and lone
  surrogates (Cs: bytes of a file name that are not UTF-8). Everything else, other scripts
  and emoji included, is shown as it is; a backslash is left alone, so escaping twice
  changes nothing.
- ``csv_safe_cell`` / ``csv_safe_frame``: a text cell's controls are escaped as above
  (except line breaks and tabs, which the CSV quotes), and a cell that a spreadsheet would
  read as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
  gets a leading single quote, as OWASP's CSV-injection guidance says. Numbers are never changed:
  ``-0.5`` in a numeric column stays the number -0.5.
- ``to_safe_csv``: a DataFrame written as CSV that way, with RFC 4180's CRLF line ends, so
  that a cell holding a carriage return or a newline (a file name can) is quoted and cannot
  end its row early (with ``\n`` line ends, a lone ``\r`` was written unquoted).
"""

from __future__ import annotations

import unicodedata

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# OWASP, "CSV Injection": cells starting with these are formulas to Excel, LibreOffice, Sheets.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _escape(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def terminal_safe(text) -> str:
    """``text`` (made a string) with its control characters escaped: one line, no escape
    sequences. Printable text, whatever its script, is returned unchanged."""
    text = str(text)
    if text.isprintable():  # the common case: nothing to look at
        return text
    return "".join(
        _escape(char) if unicodedata.category(char) in _ESCAPED_CATEGORIES else char
        for char in text
    )


def csv_safe_cell(value):
    """A text cell with its escape sequences and other controls written escaped (as
    ``terminal_safe`` does; line breaks and tabs stay, the cell is quoted) and, if it then
    starts like a formula, a single quote in front; any other value (numbers, booleans,
    missing values) as it is. (Issue 34: a file name's ESC bytes reached the CSV raw, and a
    ``cat`` of it ran them in the terminal.)"""
    if not isinstance(value, str):
        return value
    if not value.isprintable():
        value = "".join(
            _escape(char)
            if char not in _SHORT_ESCAPES and unicodedata.category(char) in _ESCAPED_CATEGORIES
            else char
            for char in value
        )
    if value.startswith(CSV_FORMULA_STARTS):
        return "'" + value
    return value


def csv_safe_frame(frame):
    """A copy of the DataFrame ``frame`` whose text cells are ``csv_safe_cell``-ed, for
    writing as CSV. Numeric and boolean columns are not touched; in a column of mixed
    values only the strings can change."""
    import pandas as pd
    from pandas.api.types import is_object_dtype, is_string_dtype

    frame = frame.copy()
    for position, column in enumerate(frame.columns):
        series = frame.iloc[:, position]
        if not (is_object_dtype(series.dtype) or is_string_dtype(series.dtype)):
            continue
        cells = [csv_safe_cell(value) for value in series]
        if any(isinstance(new, str) and new is not old for new, old in zip(cells, series)):
            frame.isetitem(
                position, pd.Series(cells, index=series.index, dtype=series.dtype, name=column)
            )
    return frame


def to_safe_csv(frame, target=None):
    """``csv_safe_frame(frame).to_csv(target)`` without the index, with CRLF line ends (every
    cell holding ``\r`` or ``\n`` is quoted). ``target``: a path or an open file (text or
    binary); None returns the text."""
    return csv_safe_frame(frame).to_csv(target, index=False, lineterminator="\r\n")


__all__ = ["terminal_safe", "csv_safe_cell", "csv_safe_frame", "to_safe_csv", "CSV_FORMULA_STARTS"]
