"""Where every file the project reads comes in: text decoding, CSV, spreadsheets, JSON, and dates.

One module so that a station file, a weather-forecast table, a posted record and the data layout's own
files are all read the same way, and fail the same way (a one-line :class:`~sca2lstm.errors.DataError`
naming the file and what was wrong, or a :class:`~sca2lstm.errors.UsageError` for a bad option).

- :func:`read_bytes`: a file's bytes (``.gz`` decompressed) and the sha256 of what is on disk.
- :func:`decode`: bytes to text. Without an encoding: a byte-order mark decides (UTF-8, UTF-16); then
  strict UTF-8; then the charset-normalizer detector restricted to the encodings station files are
  saved in (GB18030, which reads GBK and GB2312; Windows-1252; UTF-16 without a mark), and Latin-1 as
  the last resort. The encoding used is returned so that commands can print it. The detector is
  restricted because on a few lines of Chinese it otherwise prefers Korean (cp949).
- :func:`read_table`: a station-style table as text cells (``.csv``/``.txt``/``.gz`` in any separator,
  ``.xlsx``/``.xlsm`` through openpyxl, ``.xls`` through xlrd when installed), with title rows above
  the header skipped (given, or found as the first row holding the wanted column names); a wanted name that
  heads two columns is refused, not read from the first.
- :func:`ungroup_numbers`: number cells as written (``1,234.5``, ``1.234,5`` with a decimal comma) made ready for
  :func:`pandas.to_numeric`, a grouping that cannot be told from a decimal mark refused.
- :func:`read_csv`: a typed CSV of the data layout (strict UTF-8 unless told otherwise).
- :func:`read_json`: a JSON document.
- :func:`parse_dates`: the one date parser. It never guesses day against month: year-first forms are
  read as written; day/month/year against month/day/year only when the column itself shows which
  (a value above 12 in one field and none in the other); otherwise an explicit format is required.
- :func:`normalise_name` / :func:`match_columns`: headers are matched as the user wrote them, after
  Unicode NFKC normalisation (full-width letters, digits and brackets become ASCII, ``m³`` becomes
  ``m3``), spaces dropped and case folded.
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import gzip
import hashlib
import io
import json
import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, UsageError

# Encodings the detector may choose among (codec names of Python). GB18030 is a superset of GBK and
# GB2312, so GBK files decode exactly; cp1252 covers Latin-1's printable range plus Windows' extras.
DETECT_CANDIDATES = ("gb18030", "cp1252", "utf_16_le", "utf_16_be")
NA_CELLS = ("", "NA", "NaN", "nan", "-")
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls")
# Rows searched for the header when it is not on the first line (title rows, merged headings above it).
HEADER_SEARCH_ROWS = 50
# Excel serial day numbers that can be dates here: 1 (1900-01-01) to 2958465 (9999-12-31).
_EXCEL_SERIAL_MAX = 2958465.0
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_DISPLAY = {"utf_8": "UTF-8", "utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf_8_sig": "UTF-8 with BOM",
            "gb18030": "GB18030 (GBK)", "gbk": "GBK", "gb2312": "GB2312", "cp1252": "Windows-1252",
            "latin_1": "Latin-1", "iso8859-1": "Latin-1", "utf-16": "UTF-16", "utf_16": "UTF-16",
            "utf_16_le": "UTF-16 LE", "utf_16_be": "UTF-16 BE", "utf-32": "UTF-32", "utf_32": "UTF-32"}


# ------------------------------------------------------------------------------------------ bytes, text
def read_bytes(path, what: str = "file") -> tuple[bytes, str]:
    """The file's bytes, gunzipped when it is gzip (by its magic number), and the sha256 of the file.

    Raises DataError for a missing file, a folder, or damaged gzip.
    """
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; expected a {what}") from None
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path} is not a readable gzip file ({e})") from None
    return raw, digest


def check_encoding(name: str, flag: str = "--encoding") -> str:
    """The Python codec name of ``name`` (``gbk``, ``GB18030``, ``utf-8-sig``, ``latin-1`` ...).

    Raises UsageError naming the value when Python knows no such text encoding.
    """
    try:
        info = codecs.lookup(str(name).strip())
    except LookupError:
        raise UsageError(f"{flag} {name!r} is not a known encoding; e.g. utf-8, utf-8-sig, gbk, gb18030, "
                         "utf-16, latin-1, cp1252") from None
    if not getattr(info, "_is_text_encoding", True):
        raise UsageError(f"{flag} {name!r} is not a text encoding; e.g. utf-8, gbk, gb18030, utf-16, latin-1")
    return info.name


def encoding_label(name: str) -> str:
    """A reader's name for a codec: ``gb18030`` -> ``GB18030 (GBK)``."""
    key = str(name).lower().replace("-", "_") if name not in _DISPLAY else name
    return _DISPLAY.get(key, _DISPLAY.get(name, name))


GIVE_ENCODING = "give the right --encoding (e.g. gbk, utf-8, latin-1)"


def decode(raw: bytes, encoding: str | None = None, source: str = "file",
           advice: str = GIVE_ENCODING) -> tuple[str, str, bool]:
    """Decode ``raw``; returns ``(text, codec name, detected)``.

    Parameters
    ----------
    raw : bytes
        The file's content (already gunzipped).
    encoding : str, optional
        Use this encoding (a UTF-8 byte-order mark is dropped either way). Default: detect (see the module
        docstring for the order).
    source : str
        Named in errors.
    advice : str
        What to do about text that is not in ``encoding``: the option to give, where the caller has one.
    """
    if encoding is not None:
        codec = check_encoding(encoding)
        if codec in ("utf-8",) and raw.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        elif raw.startswith(codecs.BOM_UTF8) and not codec.startswith("utf"):
            raw = raw[len(codecs.BOM_UTF8):]   # a UTF-8 mark before GBK text would read as 锘 in the first name
        try:
            return raw.decode(codec), codec, False
        except UnicodeDecodeError as e:
            raise DataError(f"{source} is not {encoding_label(codec)} text (byte 0x{raw[e.start]:02x} at offset "
                            f"{e.start} does not decode); {advice}") \
                from None
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(codec), codec, True
            except UnicodeDecodeError:
                if bom == codecs.BOM_UTF8:
                    # a UTF-8 mark in front of GBK text (a tool that writes the mark whatever it saves): the text
                    # is read without it; with it, the detector settles on Windows-1252 and every header is garbled
                    raw = raw[len(bom):]
                break
    head = raw[:4096]
    if b"\x00" in head and _looks_utf16(raw):  # UTF-16 without a mark; ASCII in it is also valid UTF-8
        codec = "utf_16_le" if head[1::2].count(0) > head[0::2].count(0) else "utf_16_be"
        try:
            return raw.decode(codec), codec, True
        except UnicodeDecodeError:
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if not _gbk_read_as_utf8(text, raw):
            return text, "utf-8", True
        return raw.decode("gb18030"), "gb18030", True
    from charset_normalizer import from_bytes

    best = from_bytes(raw, cp_isolation=list(DETECT_CANDIDATES)).best()
    if best is not None:
        try:
            return raw.decode(best.encoding), best.encoding, True
        except UnicodeDecodeError:  # the detector looks at samples; the whole file may disagree
            pass
    return raw.decode("latin_1"), "latin_1", True


@dataclass
class TextFile:
    """A decoded text file: ``text``, the ``encoding`` used (codec name) and whether it was ``detected``."""

    path: Path
    text: str
    encoding: str
    detected: bool
    sha256: str


def read_text(path, encoding: str | None = None, what: str = "text file") -> TextFile:
    """Read and decode a text file (plain or gzip). Binary content and empty files are DataErrors."""
    raw, digest = read_bytes(path, what)
    if not raw.strip():
        raise DataError(f"{path} is empty; expected a {what}")
    if encoding is None and _holds_binary(raw):
        raise DataError(f"{path} is not a text file (it holds binary data); expected a {what}")
    text, codec, detected = decode(raw, encoding, str(path))
    return TextFile(Path(path), text, codec, detected, digest)


# Unicode blocks a two-byte UTF-8 character falls in: Latin (accents, °, ³), spacing modifiers, Greek, Cyrillic,
# Armenian, Hebrew, Arabic, and the rest up to U+07FF.
_TWO_BYTE_BLOCKS = (0x80, 0x2B0, 0x370, 0x400, 0x530, 0x590, 0x600, 0x700, 0x800)


def _gbk_read_as_utf8(text: str, raw: bytes) -> bool:
    """True where ``text``, ``raw`` read as UTF-8, is GBK text whose every character happened to form a valid
    two-byte UTF-8 sequence: 水位 (CB AE CE BB) reads as ``ˮλ``, 站 as ``վ``, a file name or a lone header in a
    short spec or table. Such a reading gives letters of no language: each non-ASCII run a mix of scripts or a lone
    letter of a script no unit is written in (a lone Greek or Cyrillic letter may be one: μ, м3/с), where a word
    of Greek, Cyrillic or Hebrew is a run of one script, and accented Latin is Latin; and the bytes read as
    GB18030 give Chinese characters only."""
    runs = re.findall(r"[^\x00-\x7f]+", text)
    if not runs or any(ord(c) >= 0x800 for r in runs for c in r):
        return False

    def block(c: str) -> int:
        return int(np.searchsorted(_TWO_BYTE_BLOCKS, ord(c), side="right"))

    for r in runs:
        blocks = {block(c) for c in r}
        if blocks in ({1}, {3}, {4}) or (len(r) >= 2 and len(blocks) == 1 and blocks != {2}):
            return False   # Latin text, Greek or Cyrillic, or a word of one script
    try:
        wide = re.findall(r"[^\x00-\x7f]", raw.decode("gb18030"))
    except UnicodeDecodeError:
        return False
    return bool(wide) and all("\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" for c in wide)


def _holds_binary(raw: bytes) -> bool:
    """True for bytes that are no text: NUL bytes in the first 64 KiB that are not UTF-16's."""
    return b"\x00" in raw[:65536] and not _looks_utf16(raw)


def _looks_utf16(raw: bytes) -> bool:
    """True when the NUL bytes sit in every second byte, as in UTF-16 text of mostly ASCII."""
    head = raw[:4096]
    if len(head) < 4 or raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    even, odd = head[0::2], head[1::2]
    return even.count(0) > 0.3 * len(even) and odd.count(0) == 0 or odd.count(0) > 0.3 * len(odd) and even.count(0) == 0


def read_json(path, what: str = "JSON file"):
    """A JSON document (UTF-8, BOM allowed); DataError naming the file and the position of a syntax error."""
    tf = read_text(path, encoding=None, what=what)
    return parse_json(tf.text, str(path), what)


def parse_json(content: bytes | str, source: str, what: str = "JSON document"):
    """:func:`read_json` of content already in hand (a file's text, a request body): ``source`` is named in
    errors."""
    if isinstance(content, bytes):
        if not content.strip():
            raise DataError(f"{source} is empty; expected a {what}")
        content, _, _ = decode(content, None, source)
    try:
        return json.loads(content)
    except json.JSONDecodeError as e:
        raise DataError(f"{source} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None


# ------------------------------------------------------------------------------------------ names
def normalise_name(name) -> str:
    """A header as compared: NFKC (full-width to ASCII, ``m³`` to ``m3``), without any spaces, casefolded.

    Spaces are dropped, not only trimmed: ``流量 (m3/s)`` and ``流量(m3/s)`` are the same header to a user.
    """
    s = unicodedata.normalize("NFKC", str(name))
    return re.sub(r"\s+", "", s).casefold()


def match_columns(columns, wanted: dict, source: str = "file", hint: str | None = None) -> dict:
    """Map ``{key: name as the user wrote it}`` to ``{key: the file's column}`` by :func:`normalise_name`.

    Raises DataError naming every wanted column that is absent (and the file's columns), or a name that
    two columns share after normalisation. ``hint`` ends that message (default: ask about ``--sep`` where the
    file read as one column).
    """
    by_norm: dict[str, list] = {}
    for c in columns:
        by_norm.setdefault(normalise_name(c), []).append(c)
    out, absent = {}, []
    for key, name in wanted.items():
        hits = by_norm.get(normalise_name(name), [])
        if not hits:
            absent.append(f"{key}={name}")
        elif len(hits) > 1:
            raise DataError(f"{source}: {key}={name} matches {len(hits)} columns ({hits}); rename one of them")
        else:
            out[key] = hits[0]
    if absent:
        shown = [str(c) for c in columns]
        # the fields were not split where the file splits them (and a ',' was a decimal comma?)
        sep = next((flag for ch, flag in ((";", "';'"), ("\t", "'\\t'"), ("|", "'|'")) if any(ch in c for c in shown)),
                   None)
        if hint is None and sep:
            hint = f" (its lines hold {sep}: --sep {sep}, and --decimal , if numbers are written 1,5)"
        raise DataError(f"{source}: mapped column(s) {', '.join(absent)} not in the file; its columns are {shown}"
                        + (hint if hint is not None else " (is --sep right?)" if len(shown) == 1 else ""))
    return out


# ------------------------------------------------------------------------------------------ tables
@dataclass
class Table:
    """A table as read: every cell a ``str`` (surrounding spaces stripped) or missing (``<NA>``).

    ``frame`` has the header's names as columns. ``header_row`` is the 0-based row (line) of the header in
    the file or sheet, so data row ``i`` is the file's row ``header_row + 2 + i`` counted from 1.
    """

    frame: pd.DataFrame
    source: str
    sha256: str
    kind: str                       # "csv" or "xlsx" / "xls"
    encoding: str | None = None     # codec used for a text file
    encoding_detected: bool = False
    sheet: str | None = None
    header_row: int = 0
    excel_epoch: _dt.datetime | None = None
    sheets: tuple = ()              # every sheet of a spreadsheet, in order
    row_numbers: tuple | None = None  # the file (sheet) row of each data row, 1-based, where blank rows were dropped
    number_cells: pd.DataFrame | None = None  # a spreadsheet's: True where the cell holds a number, not text

    @property
    def first_data_row(self) -> int:
        """1-based file (sheet) row of the first data row, for messages."""
        return self.header_row + 2

    @property
    def rows(self) -> np.ndarray:
        """[rows] The 1-based file (sheet) row of each data row, for messages: blank rows dropped above a row
        count in its number."""
        if self.row_numbers is not None and len(self.row_numbers) == len(self.frame):
            return np.asarray(self.row_numbers, dtype=np.int64)
        return np.arange(len(self.frame), dtype=np.int64) + self.first_data_row

    def describe(self) -> str:
        """One line for the user: how the file was read."""
        parts = []
        if self.kind == "csv":
            how = "detected" if self.encoding_detected else "given"
            parts.append(f"encoding {encoding_label(self.encoding)} ({how}; --encoding overrides)")
        else:
            parts.append(f"sheet {self.sheet!r}")
        if self.header_row:
            parts.append(f"header on row {self.header_row + 1} ({self.header_row} title row(s) skipped)")
        return ", ".join(parts)


def read_table(path, *, sep: str = ",", encoding: str | None = None, sheet=None, skiprows: int | None = None,
               header_names=(), na_values=()) -> Table:
    """Read a station-style table (CSV in any separator, gzip, or a spreadsheet) as text cells.

    Parameters
    ----------
    path : path
        ``.xlsx``/``.xlsm``/``.xls`` are read as spreadsheets, anything else as delimited text.
    sep : str
        Column separator of text files (``\\t`` or ``tab`` for a tab).
    encoding : str, optional
        Text encoding (default: detected, see :func:`decode`).
    sheet : str or int, optional
        Spreadsheet sheet: its name, or its number counted from 1 (default: the first sheet).
    skiprows : int, optional
        Rows above the header to skip. Default: the header is the first row (of the first
        :data:`HEADER_SEARCH_ROWS`) that holds every one of ``header_names``; without them (or when no row
        holds them all) the first row with at least two cells and at least half as many cells as the
        fullest row (a title row holds one; missing names are then reported by :func:`match_columns`).
    header_names : iterable of str
        Column names the caller will look for (as the user wrote them).
    na_values : iterable of str
        Cell texts that mean missing, besides :data:`NA_CELLS`.
    """
    path = Path(path).expanduser()
    if skiprows is not None and (not isinstance(skiprows, (int, np.integer)) or skiprows < 0):
        raise UsageError(f"--skiprows {skiprows!r} must be a whole number >= 0 (title rows above the header)")
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        if sep not in (",", None):
            pass  # a separator means nothing in a spreadsheet
        return _read_sheet(path, sheet, skiprows, header_names, na_values)
    if sheet is not None:
        raise UsageError(f"--sheet {sheet!r} given, but {path.name} is not a spreadsheet (.xlsx, .xlsm, .xls)")
    return _read_delimited(path, sep, encoding, skiprows, header_names, na_values)


def _header_index(rows: list[list], header_names, skiprows: int | None) -> int:
    if skiprows is not None:
        return int(skiprows)
    wanted = {normalise_name(n) for n in header_names if n}
    if wanted:
        for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
            if wanted <= {normalise_name(c) for c in row if c not in (None, "")}:
                return i
    # A title row holds one cell (or a merged heading); the header is the first row with at least two
    # names and at least half as many cells as the fullest row nearby (data rows may hold more fields).
    counts = [sum(c not in (None, "") for c in row) for row in rows[:HEADER_SEARCH_ROWS]]
    top = max(counts, default=0)
    return next((i for i, n in enumerate(counts) if n >= 2 and 2 * n >= top), 0)


def _check_repeated(path: Path, header: list, header_names, where: str = "") -> None:
    """DataError where a wanted column name (``header_names``, as :func:`normalise_name` compares them) heads more
    than one column of ``header`` (a two-row heading flattened to 流量, 流量): which is meant cannot be told, and
    the first would be read without a word."""
    norm = [normalise_name(c) for c in header]
    for name in dict.fromkeys(n for n in header_names if n):
        at = [i + 1 for i, c in enumerate(norm) if c == normalise_name(name)]
        if len(at) > 1:
            raise DataError(f"{path}{where}: column {name!r} heads {len(at)} columns (numbers "
                            f"{', '.join(map(str, at))} from the left); rename them so that each name is one column")


def _unique(names: list) -> list:
    """``names`` with a repeated one numbered as pandas numbers a CSV's (流量, 流量.1), so every column stays one."""
    seen: dict = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}.{k}")
    return out


def _clean(frame: pd.DataFrame, na_values) -> pd.DataFrame:
    na = set(NA_CELLS) | {str(v).strip() for v in na_values}
    out = {}
    for c in frame.columns:
        s = frame[c].astype("string").str.strip()
        out[c] = s.mask(s.isin(na))
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def _read_delimited(path: Path, sep: str, encoding, skiprows, header_names, na_values) -> Table:
    raw, digest = read_bytes(path, "table (CSV)")
    if not raw.strip():
        raise DataError(f"{path} is empty; expected a CSV with a header row and one row per time step")
    kind = _spreadsheet_kind(raw)
    if kind:  # a workbook saved (or renamed) with a .csv name: read as text it is binary noise
        raise DataError(f"{path} is an Excel workbook ({kind}) under a {path.suffix or 'text'} name: rename it "
                        f"{path.stem}{kind}, or save the sheet as CSV")
    if encoding is None and _holds_binary(raw):
        raise DataError(f"{path} is not a text file (it holds binary data); expected a CSV")
    text, codec, detected = decode(raw, encoding, str(path))
    if sep in ("\\t", "tab"):
        sep = "\t"
    lines = text.splitlines()   # once: an hourly record runs to megabytes

    def fields(line: str) -> list:
        return next(csv.reader([line], delimiter=sep), []) if len(sep) == 1 else line.split(sep)

    rows = [fields(line) for line in lines[:HEADER_SEARCH_ROWS]]
    hdr = _header_index(rows, header_names, skiprows)
    if hdr >= len(lines):
        raise DataError(f"{path}: --skiprows {hdr} skips every row; it has {len(lines)} lines")
    _check_repeated(path, rows[hdr] if hdr < len(rows) else fields(lines[hdr]), header_names)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=True,
                         skipinitialspace=True, skiprows=hdr, engine="c" if len(sep) == 1 else "python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as e:
        raise DataError(f"{path} is not a readable CSV with --sep {sep!r}: {str(e).splitlines()[0]}") from None
    if not isinstance(df.index, pd.RangeIndex):  # pandas turned the surplus leading fields into an index
        raise DataError(f"{path}: the rows have more fields than the header ({len(df.columns)} names) with --sep "
                        f"{sep!r}; decimal commas with a comma separator? give the right --sep (e.g. ';') "
                        "and --decimal ,")
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise DataError(f"{path} has a header but no data rows; expected one row per time step")
    # pandas skips blank lines: count them, so that a message names the row the user sees (a quoted field
    # spanning lines breaks the count, and the numbers then fall back to header row + 2 + i)
    kept = [hdr + 2 + i for i, line in enumerate(lines[hdr + 1:]) if line.strip()]
    return Table(_clean(df, na_values), str(path), digest, "csv", codec, detected, None, hdr,
                 row_numbers=tuple(kept) if len(kept) == len(df) else None)


def _cell_text(v):
    """A spreadsheet cell as text: dates in ISO form (to the second), numbers as written, None stays."""
    if v is None:
        return None
    if isinstance(v, _dt.datetime):
        v = (v + _dt.timedelta(microseconds=500_000)).replace(microsecond=0)  # Excel's float noise
        return v.isoformat(sep=" ")
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, _dt.time):
        return v.replace(microsecond=0).isoformat()
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return str(v)


def _read_sheet(path: Path, sheet, skiprows, header_names, na_values) -> Table:
    raw, digest = read_bytes(path, "spreadsheet")
    if path.suffix.lower() != ".xls" and not raw.startswith(b"PK") and raw.strip() and \
            (b"\x00" not in raw[:4096] or _looks_utf16(raw)) and raw.lstrip()[:1] != b"<":
        raise DataError(f"{path} is a text file (CSV) under a {path.suffix} name, not a workbook: rename it "
                        f"{path.stem}.csv")
    if path.suffix.lower() == ".xls":
        names, rows_of, epoch = _xls_book(path, raw)
    else:
        names, rows_of, epoch = _xlsx_book(path, raw)
    name = _pick_sheet(path, names, sheet)
    rows = [list(r) for r in rows_of(name)]
    while rows and all(c in (None, "") for c in rows[-1]):
        rows.pop()
    if not rows:
        others = sheet_listing(names, leaving=name)
        hint = f"; choose another with --sheet (its sheets: {others})" if others else ""
        raise DataError(f"{path}: sheet {name!r} is empty; expected a header row and one row per time step{hint}")
    hdr = _header_index(rows, header_names, skiprows)
    if hdr >= len(rows):
        raise DataError(f"{path}: --skiprows {hdr} skips every row of sheet {name!r} ({len(rows)} rows)")
    header = rows[hdr]
    width = max(len(r) for r in rows[hdr:])
    cols = [(_cell_text(c) or "").strip() or f"Unnamed: {i}" for i, c in
            enumerate(list(header) + [None] * (width - len(header)))]
    _check_repeated(path, cols, header_names, f" (sheet {name!r})")
    cols = _unique(cols)
    cells = [list(r) + [None] * (width - len(r)) for r in rows[hdr + 1:]]
    body = [[_cell_text(c) for c in r] for r in cells]
    kept = [hdr + 2 + i for i, r in enumerate(body) if any(c not in (None, "") for c in r)]
    body = [body[k - hdr - 2] for k in kept]
    # a number cell is a number whatever --decimal says; only its text is rendered with a point above
    numbers = [[isinstance(c, (int, float)) and not isinstance(c, bool) for c in cells[k - hdr - 2]] for k in kept]
    if not body:
        others = sheet_listing(names, leaving=name)
        raise DataError(f"{path}: sheet {name!r} has a header but no data rows"
                        + (f"; choose another with --sheet (its sheets: {others})" if others else ""))
    df = pd.DataFrame(body, columns=cols, dtype="string")
    return Table(_clean(df, na_values), str(path), digest, "xlsx" if path.suffix.lower() != ".xls" else "xls",
                 None, False, name, hdr, epoch, tuple(names), tuple(kept),
                 pd.DataFrame(numbers, columns=cols, dtype=bool))


def _xlsx_book(path: Path, raw: bytes):
    import zipfile

    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        formulas = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable .xlsx workbook ({type(e).__name__}: {e})") from None

    def rows(name):
        # A formula's value is the one the workbook saved; a workbook written by a program and never opened and
        # saved in Excel or WPS has none, and its cells would read as missing days without a word.
        for i, (values, written) in enumerate(zip(wb[name].iter_rows(values_only=True),
                                                  formulas[name].iter_rows(values_only=True)), start=1):
            for j, (v, f) in enumerate(zip(values, written)):
                if v is None and isinstance(f, str) and f.startswith("="):
                    from openpyxl.utils import get_column_letter

                    raise DataError(f"{path}: sheet {name!r} cell {get_column_letter(j + 1)}{i} holds a formula "
                                    f"({f[:40]}) with no saved value (the workbook was written by a program and never "
                                    "saved in Excel or WPS); open and save it there, or export the sheet as CSV")
            yield values
    return list(wb.sheetnames), rows, wb.epoch


def _spreadsheet_kind(raw: bytes) -> str | None:
    """``.xlsx`` or ``.xls`` where ``raw`` is a workbook of that kind (by its first bytes), else None."""
    if raw.startswith(b"PK\x03\x04") and b"xl/" in raw[:65536]:
        return ".xlsx"
    if raw.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return ".xls"
    return None


def _xls_book(path: Path, raw: bytes):
    if raw.lstrip()[:1] == b"<" or raw[:3] == codecs.BOM_UTF8 and raw[3:].lstrip()[:1] == b"<":
        # what many web portals and old database exports call .xls: an HTML table (or XML spreadsheet)
        raise DataError(f"{path} is a web page or XML table under an .xls name, not an Excel workbook: open it in "
                        "Excel or WPS and save it as .xlsx (or the sheet as CSV)")
    if _spreadsheet_kind(raw) == ".xlsx":
        raise DataError(f"{path} is an .xlsx workbook under an .xls name: rename it {path.stem}.xlsx")
    try:
        import xlrd
    except ImportError:
        raise DataError(f"{path}: reading the old .xls format needs xlrd (pip install 'sca2lstm[xls]'); or save "
                        "the sheet as .xlsx or CSV in Excel") from None
    try:
        book = xlrd.open_workbook(file_contents=raw)
    except Exception as e:  # xlrd raises its own XLRDError and struct errors on damaged files
        raise DataError(f"{path} is not a readable .xls workbook ({e})") from None
    epoch = _dt.datetime(1904, 1, 1) if book.datemode else _dt.datetime(1899, 12, 30)

    def rows(name):
        sh = book.sheet_by_name(name)
        for i in range(sh.nrows):
            out = []
            for c in sh.row(i):
                if c.ctype == xlrd.XL_CELL_DATE:
                    out.append(xlrd.xldate.xldate_as_datetime(c.value, book.datemode))
                elif c.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    out.append(None)
                else:
                    out.append(c.value)
            yield out
    return book.sheet_names(), rows, epoch


def sheet_listing(names, leaving: str | None = None) -> str:
    """``1 'Sheet1', 2 '逐日'``: a workbook's sheets by number and name, as ``--sheet`` takes them (without
    ``leaving``, the sheet already read)."""
    return ", ".join(f"{i + 1} {n!r}" for i, n in enumerate(names) if n != leaving)


def _pick_sheet(path: Path, names: list, sheet) -> str:
    listing = sheet_listing(names)
    if sheet is None or str(sheet).strip() == "":
        return names[0]
    s = str(sheet).strip()
    if s in names:
        return s
    by_norm = {normalise_name(n): n for n in names}
    if normalise_name(s) in by_norm:
        return by_norm[normalise_name(s)]
    if re.fullmatch(r"\d+", s) and 1 <= int(s) <= len(names):
        return names[int(s) - 1]
    raise UsageError(f"--sheet {str(sheet)!r} is not in {path.name}; its sheets (number and name): {listing}")


def read_csv(path, encoding: str | None = "utf-8", advice: str = GIVE_ENCODING, **kwargs) -> pd.DataFrame:
    """A typed CSV of the data layout (pandas parses the numbers; ``kwargs`` go to :func:`pandas.read_csv`).

    ``encoding`` defaults to UTF-8 (a BOM is dropped): the layout's files are UTF-8 by contract; None
    detects. Raises DataError naming the file for a missing, empty, undecodable or malformed file.
    """
    path = Path(path)
    raw, _ = read_bytes(path, "CSV file")
    return parse_csv(raw, str(path), encoding, advice=advice, **kwargs)


def parse_csv(raw: bytes, source: str, encoding: str | None = "utf-8", advice: str = GIVE_ENCODING,
              **kwargs) -> pd.DataFrame:
    """:func:`read_csv` of bytes already in hand (a file's, a request body): ``source`` is named in errors, and
    ``advice`` says what to do about text not in ``encoding`` (:func:`decode`)."""
    if not raw.strip():
        raise DataError(f"{source} is empty; expected a CSV with a header row")
    _refuse_binary(raw, source)
    text, _, _ = decode(raw, encoding, source, advice)
    if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):  # a JSON export under a .csv name reads as noisy columns
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            raise DataError(f"{source} is JSON, not CSV; expected a CSV with a header row (pandas: DataFrame.to_csv)")
    sep = kwargs.get("sep", ",")
    try:
        df = pd.read_csv(io.StringIO(text), **kwargs)
    except pd.errors.ParserError as e:
        _check_fields(text, source, sep)
        raise DataError(f"{source} is not a readable CSV: {str(e).splitlines()[0]}") from None
    except (pd.errors.EmptyDataError, ValueError) as e:
        raise DataError(f"{source} is not a readable CSV: {str(e).splitlines()[0]}") from None
    # pandas fills a short row's last fields with NaN and turns surplus leading fields on every row into an
    # index, both silently: the count is checked exactly where either can have happened (a NaN in the last
    # column, an index), which a clean file of thousands of days does not pay for.
    if len(df.columns) and (not isinstance(df.index, pd.RangeIndex) or df.iloc[:, -1].isna().any()):
        _check_fields(text, source, sep)
    return df


def separator_hint(header) -> str:
    """Where ``header`` (a comma-separated file's column names) is one name holding ';', a tab or '|' (a
    spreadsheet's export in much of Europe), the words that say so; else ''."""
    cols = [str(c) for c in header]
    sep = next((s for s in (";", "\t", "|") if len(cols) == 1 and s in cols[0]), None)
    return ("" if sep is None else f", one column: its fields are separated by {sep!r}, and the data layout's files "
            "by ','; save it as CSV with commas")


def _refuse_binary(raw: bytes, source: str) -> None:
    """A DataError where ``raw`` (a file meant to be a CSV) is a workbook, an archive or other binary data: read as
    text it would be a column of noise, or advice about an encoding that cannot help."""
    kind = _spreadsheet_kind(raw)
    if kind:
        raise DataError(f"{source} is an Excel workbook ({kind}) under a CSV name, not CSV text; save the sheet as "
                        "CSV (UTF-8)")
    if raw.startswith(b"PK\x03\x04"):
        raise DataError(f"{source} is a zip archive, not CSV text; unzip it and use the CSV inside")
    if _holds_binary(raw):
        raise DataError(f"{source} is not a text file (it holds binary data); expected a CSV")


def _check_fields(text: str, source: str, sep: str) -> None:
    """A DataError naming the first line of ``text`` whose field count is not the header's, with both counts.

    Blank lines are skipped (as pandas skips them); a header's trailing empty names (a comma ending the header
    line) need no fields in a row.
    """
    if not isinstance(sep, str) or len(sep) != 1:
        return  # a regular-expression separator: pandas' own message stands
    if _counts_agree(text, sep):
        return
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    header = None
    try:
        for row in _counted(rows):
            if header is None:
                header = [c.strip() for c in row]
                needed = len(header)
                while needed and not header[needed - 1]:
                    needed -= 1
            elif not needed <= len(row) <= len(header):
                shown = ", ".join(header) if len(header) <= 6 else ", ".join([*header[:3], "...", *header[-2:]])
                hint = separator_hint(header) or "; a separator too many or missing in that row?"
                raise DataError(f"{source}: line {rows.line_num} has {len(row)} fields, expected {len(header)} as "
                                f"in the header ({shown}){hint}")
    except csv.Error:
        return  # not text that the csv module splits (a stray carriage return, binary): pandas' message stands


def _counts_agree(text: str, sep: str) -> bool:
    """True where every non-blank line of ``text`` holds as many ``sep`` as the first: the common case, counted at
    a third of the csv module's time (most files of the large sample hold NaN in their last column). False sends
    the caller to the exact reading (quotes, a header ending in a separator)."""
    counts = [line.count(sep) for line in text.split("\n") if line.strip()]
    return not counts or counts.count(counts[0]) == len(counts)


def _counted(rows):
    """The rows of a csv reader that are not blank (as pandas skips blank lines)."""
    for row in rows:
        if row and not (len(row) == 1 and not row[0].strip()):
            yield row


# ------------------------------------------------------------------------------------------ numbers
def _grouped(mark: str, decimal: str, groups: str = "+") -> str:
    """The pattern of a number with its thousands grouped by ``mark`` (``1,234,567``, ``1.234,5``) and an optional
    decimal part after ``decimal``; ``groups``: how many groups of three (``+``, or ``{2,}``)."""
    return rf"[+-]?\d{{1,3}}(?:{re.escape(mark)}\d{{3}}){groups}(?:{re.escape(decimal)}\d*)?"


def ungroup_numbers(s: pd.Series, name: str, what: str, decimal: str, thousands, rows, *, flags: bool = True,
                    decimal_seen: bool = False) -> pd.Series:
    """``s`` (text cells, NA where missing) with the thousands grouping dropped and the decimal mark a point, ready
    for :func:`pandas.to_numeric`; a DataError naming the column, the row and the value where a cell's grouping
    cannot be told from its decimal mark.

    A space or an apostrophe (``1 234,5``, ``1'234.5``) only ever groups thousands. The other mark (``,`` beside
    ``--decimal .``, ``.`` beside ``--decimal ,``) groups them where the cell shows it: a decimal part after it
    (``1,234.5``), or several groups (``1,234,567``). A lone group, ``1,234``, is 1234 or 1.234 by the file's
    habit, 1000 times apart: it is read as grouped where ``thousands`` says so, where the column shows that
    the mark is not its decimal mark (a cell such as ``12.5`` or ``1,234.5``), or where ``--decimal ,`` was
    given (``1.234`` then groups); otherwise it is refused, naming both flags.

    ``flags``: ``decimal`` and ``thousands`` are the user's ``--decimal`` and ``--thousands`` (named in the messages);
    False where the caller found them out (a rating table), and the messages ask for the file to be written
    otherwise. ``decimal_seen``: another column of the table shows its decimal mark (a lone group then groups).
    """
    other = "," if decimal == "." else "."
    t = s.fillna("")
    if decimal == "." and not t.str.contains(r"[, ']", regex=True).any():  # plain numbers: an hourly record's many
        return s

    def first(mask: pd.Series) -> tuple:
        """The first cell of ``mask`` as written, and its row in the file."""
        i = int(np.flatnonzero(mask.to_numpy(dtype=bool))[0])
        return t.iloc[i], file_row(rows, i)

    lone = t.str.fullmatch(rf"[+-]?\d{{1,3}}{re.escape(other)}\d{{3}}")
    if thousands is not None:
        wrong = t.str.contains(thousands, regex=False) & ~t.str.fullmatch(_grouped(thousands, decimal))
        if wrong.any():
            x, row = first(wrong)
            raise DataError(f"column {name!r} ({what}) has {x!r} (row {row}): --thousands {thousands!r} groups "
                            f"thousands in threes (1{thousands}234{decimal}5), which this value does not")
        by_other = t.str.fullmatch(_grouped(other, decimal)) & (thousands == other)
        lone = pd.Series(False, index=t.index)
    else:
        by_other = t.str.fullmatch(_grouped(other, decimal, "{2,}")) | lone | (
            t.str.fullmatch(_grouped(other, decimal)) & t.str.contains(decimal, regex=False))
    if decimal == ".":
        # a decimal comma anywhere (1,5 or 1.234,5) says how the whole column is written
        comma = (t.str.fullmatch(r"[+-]?\d*,\d+") & ~lone & ~by_other) | (
            t.str.fullmatch(_grouped(".", ",")) & t.str.contains(",", regex=False))
        if comma.any():
            x, row = first(comma)
            raise DataError(f"column {name!r} ({what}) has a decimal comma ({x!r}, row {row}); "
                            + ("add --decimal ," if flags else "write it with a decimal point"))
        seen = decimal_seen or t.str.fullmatch(r"[+-]?\d*\.\d+").any()
        if lone.any() and not (by_other & ~lone).any() and not seen:
            x, row = first(lone)
            raise DataError(f"column {name!r} ({what}) has {x!r} (row {row}): {x.replace(',', '')} with ',' grouping "
                            f"thousands, or {x.replace(',', '.')} with a decimal comma? the column shows neither: "
                            + ("give --thousands , or --decimal ," if flags else
                               f"write it without the ',' ({x.replace(',', '')}) or with a decimal point"))
    else:
        # a '.' that groups nothing is a decimal point: scaled by 1000 whether it were dropped or read
        point = t.str.contains(".", regex=False) & ~by_other
        if point.any():
            x, row = first(point)
            if not flags:
                raise DataError(f"column {name!r} ({what}) has {x!r} (row {row}), written with a decimal point where "
                                "the table's other numbers have a decimal comma; write them all alike")
            raise DataError(f"column {name!r} ({what}) has {x!r} (row {row}): a '.' that does not group thousands, but "
                            "--decimal , was given" + (" (it is written with a decimal point: leave --decimal out)"
                                                      if re.fullmatch(_grouped(",", "."), x) else ""))
    s = s.where(~by_other, s.str.replace(other, "", regex=False))
    marks = [" ", "'"] if thousands is None else [] if thousands == other else [thousands]
    for mark in marks:
        s = s.where(~t.str.fullmatch(_grouped(mark, decimal)), s.str.replace(mark, "", regex=False))
    return s.str.replace(",", ".", regex=False) if decimal == "," else s


# ------------------------------------------------------------------------------------------ dates
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_YEAR_FIRST = re.compile(r"^\d{4}([-/.])\d{1,2}\1\d{1,2}" + _TIME + "$")
_YEAR_LAST = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})\2(\d{4})(" + _TIME + ")$")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_COMMON_FORMS = tuple((f"%Y{sep}%m{sep}%d{t}", re.compile(rf"^\d{{4}}{re.escape(sep)}\d{{1,2}}{re.escape(sep)}\d{{1,2}}{rx}$"))
                      for sep in ("-", "/") for t, rx in ((" %H:%M", r" \d{1,2}:\d{2}"), (" %H:%M:%S", r" \d{1,2}:\d{2}:\d{2}"),
                                                          ("T%H:%M:%S", r"T\d{1,2}:\d{2}:\d{2}"), ("", ""))) + (
    # YYYYMMDD with a time (a compact date column joined with a time column)
    ("%Y%m%d %H:%M", re.compile(r"^\d{8} \d{1,2}:\d{2}$")), ("%Y%m%d %H:%M:%S", re.compile(r"^\d{8} \d{1,2}:\d{2}:\d{2}$")))
_COMPACT = re.compile(r"^\d{8}$")


def _chinese_dates(s: pd.Series) -> pd.Series:
    """2020年6月1日 [8:00] -> 2020-6-1 [8:00] (年/月/日 are unambiguous: year, month, day)."""
    if not s.str.contains("年", regex=False).any():
        return s
    return (s.str.replace(r"^(\d{4})年(\d{1,2})月(\d{1,2})日\s*", lambda m: f"{m[1]}-{m[2]}-{m[3]} ", regex=True)
             .str.strip())


def parse_dates(values, fmt: str | None = None, *, column: str = "date", source: str = "",
                first_row=2, excel_serial: bool = False, epoch: _dt.datetime | None = None,
                flag: str = "--date_format") -> pd.DatetimeIndex:
    """Parse a column of dates (and times) without ever guessing day against month.

    Parameters
    ----------
    values : sequence of str
        The cells (text; a cell may carry a time of day, which is kept).
    fmt : str, optional
        An explicit strftime form (e.g. ``%d/%m/%Y %H:%M``): every cell must match it.
    column, source : str
        Named in errors (``source`` is usually the file).
    first_row : int or sequence of int
        File row number of ``values[0]`` (1-based), for messages; or the file row of each value (a table whose
        blank rows were dropped: :attr:`Table.row_numbers`).
    excel_serial : bool
        Accept plain numbers as Excel serial days (from a spreadsheet); ``epoch`` is the workbook's day
        zero (default 1899-12-30, Excel's 1900 system).
    flag : str
        The option that sets ``fmt``, named in errors.

    Returns
    -------
    pandas.DatetimeIndex
        Naive timestamps, one per value, in the order given.

    Without ``fmt``, accepted: ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYY.MM.DD`` and ``YYYY年M月D日``, each
    optionally with ``HH:MM[:SS]`` (space or ``T``; ``24:00`` is 00:00 of the next day); ``YYYYMMDD``; Excel serial days (``excel_serial``);
    and ``DD/MM/YYYY`` or ``MM/DD/YYYY`` (also with ``.`` or ``-``) when the column shows the order: some
    value above 12 in one of the two fields and none in the other (or both fields always equal).
    Anything else is a DataError naming the first offending cell and its row.
    """
    where = f"{source}: " if source else ""
    s = pd.Series(list(values), dtype="string")
    empty = s.isna() | (s.str.strip() == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError(f"{where}{column!r} has an empty date cell (row {file_row(first_row, i)}); every row needs a date "
                        "(delete an empty row, or give the row its date)")
    s = s.str.strip()
    # 24:00 closes a day in many hourly records: it is 00:00 of the next day.
    end_of_day = s.str.contains(r"[ T]24:00(?::00)?$", regex=True).to_numpy(dtype=bool)
    if end_of_day.any():
        s = s.str.replace(r"([ T])24:00((?::00)?)$", r"\g<1>00:00\g<2>", regex=True)
        parsed = _parse(s, fmt, where, column, first_row, excel_serial, epoch, flag)
        return pd.DatetimeIndex(parsed + pd.to_timedelta(end_of_day.astype(np.int64), unit="D"))
    return _parse(s, fmt, where, column, first_row, excel_serial, epoch, flag)


def _parse(s, fmt, where, column, first_row, excel_serial, epoch, flag) -> pd.DatetimeIndex:
    if fmt is None:  # the common case, plain YYYY-MM-DD, in one vectorised parse
        fast = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
        if not fast.isna().any():
            return pd.DatetimeIndex(fast)
    if not s.str.isascii().all():  # full-width digits and separators (２０２０－０６－０１) become ASCII
        s = s.map(lambda v: unicodedata.normalize("NFKC", v).strip()).astype("string")
    if fmt is not None:
        parsed = pd.to_datetime(s, format=fmt, errors="coerce")
        return _checked(parsed, s, where, column, first_row, f"a date of the form {fmt}")
    s = _chinese_dates(s)
    if excel_serial:  # a spreadsheet column of date cells with some days typed as plain serial numbers
        num = s.str.match(_NUMBER).to_numpy(dtype=bool) & ~s.str.match(_COMPACT).to_numpy(dtype=bool)
        if num.any() and not num.all():
            days = s[num].astype(float).to_numpy()
            if ((days >= 1) & (days <= _EXCEL_SERIAL_MAX)).all():
                stamps = _from_serial(days, epoch)
                s = s.copy()
                s[num] = [t.isoformat(sep=" ") if t.time() != _dt.time(0) else str(t.date()) for t in stamps]
    first = str(s.iloc[0])
    for form, rx in _COMMON_FORMS:  # year-first forms in one vectorised parse each (long sub-daily records)
        if rx.match(first):
            parsed = pd.to_datetime(s, format=form, errors="coerce")
            if not parsed.isna().any():
                return pd.DatetimeIndex(parsed)
            break
    if s.str.match(_NUMBER).all():
        if s.str.match(_COMPACT).all():
            return _checked(pd.to_datetime(s, format="%Y%m%d", errors="coerce"), s, where, column, first_row,
                            "a date YYYYMMDD")
        if excel_serial:
            days = s.astype(float).to_numpy()
            if ((days < 1) | (days > _EXCEL_SERIAL_MAX)).any():
                i = int(np.flatnonzero((days < 1) | (days > _EXCEL_SERIAL_MAX))[0])
                raise DataError(f"{where}{column!r} has {s.iloc[i]!r} (row {file_row(first_row, i)}), not an Excel date "
                                f"serial (1 to {_EXCEL_SERIAL_MAX:.0f})")
            return _from_serial(days, epoch)
        days = s.astype(float).to_numpy()
        if ((days >= 10000) & (days < 100000)).all():  # 1927-2173 in Excel's day count: no form of date
            day = _from_serial(days[:1], epoch)[0]
            raise DataError(f"{where}{column!r} holds numbers ({s.iloc[0]!r}, row {file_row(first_row, 0)}), not dates: "
                            f"Excel's day numbers ({s.iloc[0]} is {day:%Y-%m-%d})? format the column as dates in Excel "
                            "before saving the CSV, or import the workbook itself (.xlsx)")
        raise DataError(f"{where}{column!r} holds numbers ({s.iloc[0]!r}, row {file_row(first_row, 0)}), not dates; give "
                        f"{flag} (e.g. %Y%m%d) or save the dates as dates")
    year_first = s.str.match(_YEAR_FIRST).to_numpy(dtype=bool)
    parts = s.str.extract(_YEAR_LAST)
    year_last = parts[0].notna().to_numpy()
    if year_first.all():
        iso = s.str.replace(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})", r"\1-\2-\3", regex=True)
        iso = iso.str.replace(r"^(\d{4})-(\d)(?=\D|$)", r"\1-0\2", regex=True)
        iso = iso.str.replace(r"^(\d{4}-\d{2})-(\d)(?=\D|$)", r"\1-0\2", regex=True)
        iso = iso.str.replace(r"[ T](\d):", r" 0\1:", regex=True)
        parsed = pd.to_datetime(iso, format="ISO8601", errors="coerce")
        return _checked(parsed, s, where, column, first_row, "a date")
    if year_last.all():
        a, b = parts[0].astype(int), parts[2].astype(int)
        if (a == b).all():  # 01/01, 02/02, ...: the same date either way
            day, month = a, b
        elif (a > 12).any() and not (b > 12).any():
            day, month = a, b
        elif (b > 12).any() and not (a > 12).any():
            day, month = b, a
        else:
            raise DataError(f"{where}{column!r} is day/month/year or month/day/year and the values (e.g. "
                            f"{s.iloc[0]!r}) do not show which; give {flag} (%d/%m/%Y or %m/%d/%Y), or write "
                            "YYYY-MM-DD")
        stamp = (parts[3] + "-" + month.astype(str).str.zfill(2) + "-" + day.astype(str).str.zfill(2)
                 + parts[4].fillna("").str.replace(r"^[ T](\d):", r" 0\1:", regex=True))
        parsed = pd.to_datetime(stamp, format="ISO8601", errors="coerce")
        return _checked(parsed, s, where, column, first_row, "a date")
    form = year_first if year_first[0] else year_last
    if not (year_first[0] or year_last[0]):
        raise DataError(f"{where}{column!r}: the form of {s.iloc[0]!r} (row {file_row(first_row, 0)}) is not recognised; give "
                        f"{flag} (e.g. %d/%m/%Y %H:%M); read without it: YYYY-MM-DD[ HH:MM], YYYY/MM/DD, "
                        "YYYY年M月D日, YYYYMMDD, and DD/MM/YYYY or MM/DD/YYYY when the values show the order")
    i = int((~form).argmax())
    raise DataError(f"{where}{column!r} has a value that is not a date in the form of the first row: "
                    f"{s.iloc[i]!r} (row {file_row(first_row, i)})")


_WHOLE_HOUR = re.compile(r"^\d{1,2}(\.0+)?$")


def whole_hours(times: pd.Series, excel: bool = False) -> tuple[pd.Series, int]:
    """A time column's cells holding a whole number from 0 to 23 read as that hour (``8`` as ``08:00``).

    A township book writes the hour of a reading as a plain number (8, 14), in a CSV or in a spreadsheet cell
    holding 8. Any other number (24, 8.5, 800) is left as it is, to be refused by :func:`parse_dates`. In a
    spreadsheet whose time column also holds a fraction of a day (0.3333, Excel's 08:00), its 0 and 1 are
    fractions too (midnight, 24:00), read by :func:`excel_date_and_time`, not hours.

    Parameters
    ----------
    times : pandas.Series
        [rows] The time column's cells as text.
    excel : bool
        Whether the cells are a spreadsheet's (where a number may be Excel's fraction of a day).

    Returns
    -------
    tuple
        ``(times, n)``: the cells with each whole hour as ``HH:00``, and how many were read so.
    """
    t = times.astype("string").str.strip()
    hour = t.str.match(_WHOLE_HOUR).fillna(False).to_numpy(dtype=bool)
    if hour.any():
        hour[hour] = t[hour].astype(float).to_numpy() <= 23
    if excel and hour.any():
        number = t.str.match(_NUMBER).fillna(False).to_numpy(dtype=bool)
        values = t[number].astype(float).to_numpy()
        if ((values > 0) & (values < 1)).any():  # Excel's fractions of a day: this column's numbers are not hours
            return times, 0
    if not hour.any():
        return times, 0
    times = times.astype("string").copy()
    times.iloc[np.flatnonzero(hour)] = [f"{int(float(v)):02d}:00" for v in t[hour]]
    return times, int(hour.sum())


def excel_date_and_time(dates: pd.Series, times: pd.Series, epoch=None) -> tuple[pd.Series, pd.Series]:
    """A spreadsheet's date column and time column with Excel's plain numbers read as Excel means them.

    A cell not formatted as a date or a time holds Excel's number: a date as its serial day (40817 is
    2011-10-01), a time as its fraction of a day (0.3333 is 08:00). Each such cell becomes the text a formatted
    cell gives (``2011-10-01``, ``08:00:00``), to be joined as ``date time`` and read by :func:`parse_dates`;
    every other cell is left as it is.

    Parameters
    ----------
    dates, times : pandas.Series
        [rows] The two columns' cells as text (a spreadsheet's, :func:`read_table`).
    epoch : datetime.datetime, optional
        The workbook's day zero (default 1899-12-30, Excel's 1900 system).

    Returns
    -------
    tuple of pandas.Series
        ``(dates, times)``: whole serial days (1 to the last Excel day, not an 8-digit ``YYYYMMDD``) as
        ``YYYY-MM-DD``; fractions from 0 to 1 as ``HH:MM:SS`` (to the second; 1 is ``24:00:00``).
    """
    dates, times = dates.astype("string"), times.astype("string")
    d, t = dates.str.strip(), times.str.strip()
    serial = (d.str.match(_NUMBER) & ~d.str.match(_COMPACT)).fillna(False).to_numpy(dtype=bool)
    if serial.any():
        days = d[serial].astype(float).to_numpy()
        whole = (days >= 1) & (days <= _EXCEL_SERIAL_MAX) & (days == np.floor(days))
        at = np.flatnonzero(serial)[whole]
        dates = dates.copy()
        dates.iloc[at] = [str(v.date()) for v in _from_serial(days[whole], epoch)]
    number = t.str.match(_NUMBER).fillna(False).to_numpy(dtype=bool)
    if number.any():
        part = t[number].astype(float).to_numpy()
        fraction = part <= 1
        seconds = np.round(part[fraction] * 86400.0).astype(np.int64)
        times = times.copy()
        times.iloc[np.flatnonzero(number)[fraction]] = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
                                                        for s in seconds]
    return dates, times


def _from_serial(days: np.ndarray, epoch) -> pd.DatetimeIndex:
    """Excel serial day numbers (fractions are times of day) as timestamps, from the book's ``epoch``
    (default the 1900 system's day 0, 1899-12-30), to the second."""
    day0 = pd.Timestamp(epoch or _dt.datetime(1899, 12, 30))
    return pd.DatetimeIndex(day0 + pd.to_timedelta(np.round(days * 86400.0), unit="s"))


def file_row(first_row, i: int) -> int:
    """The file row (1-based) of a table's data row ``i``: ``first_row + i``, or ``first_row[i]`` where
    ``first_row`` holds each row's number (blank rows dropped between them)."""
    return int(first_row + i) if np.ndim(first_row) == 0 else int(first_row[i])


def _checked(parsed, s, where, column, first_row, form) -> pd.DatetimeIndex:
    parsed = pd.Series(parsed)
    if parsed.isna().any():
        i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(f"{where}{column!r} has {s.iloc[i]!r} (row {file_row(first_row, i)}), not {form}")
    if getattr(parsed.dt, "tz", None) is not None:
        raise DataError(f"{where}{column!r} carries a UTC offset ({s.iloc[0]!r}); give the time zone with "
                        "--timezone and write the times without it")
    return pd.DatetimeIndex(parsed)
