"""The raw WHO ICTRP export (40 or 58 columns) saved as an Excel workbook (.xlsx), read with openpyxl in
read-only mode, row by row.

Each row is turned back into the text the WHO CSV export has in that cell and handed to the CSV layout's
mapping (``ictrp.read_header`` / ``ictrp.map_row``), so the same trial gives the same study from the CSV and
from the workbook. Cell rules:

* empty cell: empty text; text: as written, with the workbook's escapes (``_x000D_``) decoded, and UTF-8
  once decoded as Mac Roman (``Unit√†``, ``‚Ä¢``; about 1,900 cells of the July 2020 workbook) repaired by
  ftfy's ``fix_encoding`` (only that step);
* numbers: their digits (``500``, ``20200127``; a whole float without ``.0``);
* dates (date-formatted cells, or Excel serial numbers in a date column): ISO ``YYYY-MM-DD`` (with the
  time when there is one);
* ``Phase``: Excel read the WHO phases ``1-2`` and ``2-3`` as days (1 Feb, 2 Mar); such a date is written
  back as ``day-month`` (checked on the trials the April CSV export and the July workbook share);
* ``TRUE``/``FALSE`` cells: ``True``/``False`` as in the CSV.

The first sheet whose first row is a WHO header is read; a file that is not an xlsx workbook, or has no such
sheet, is refused.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from typing import IO, Any
from xml.etree.ElementTree import ParseError

import defusedxml
import ftfy
from openpyxl import load_workbook
from openpyxl.utils.datetime import from_excel
from openpyxl.utils.escape import unescape
from openpyxl.utils.exceptions import InvalidFileException

from . import FormatError, Row, RowError, ictrp

WHO_LAYOUTS = ("who-40", "who-58")
# WHO columns holding days; a number in them is an Excel serial date (`Date registration3` is YYYYMMDD).
DATE_COLUMNS = {"last refreshed on", "date registration", "export date", "date enrollement",
                "results date posted", "results date completed"}
PHASE_COLUMN = "phase"
# Malformed XML is a ParseError (a SyntaxError); with defusedxml installed openpyxl refuses entity
# declarations (billion laughs, external entities) with a DefusedXmlException (a ValueError).
READ_ERRORS = (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, TypeError,
               ParseError, EOFError, zipfile.LargeZipFile, NotImplementedError, RecursionError)


def _why(error: BaseException) -> str:
    """What is wrong with the workbook, from the error openpyxl raised (or the one it wraps)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, defusedxml.DefusedXmlException):
            return ("its XML declares entities (a DTD, external entities, or a billion-laughs bomb), "
                    "which are refused")
        if isinstance(seen, ParseError):
            return f"its XML is malformed ({seen})"
        seen = seen.__cause__ or seen.__context__
    return f"{type(error).__name__}: {error}"


def cell_text(value: Any, column: str, epoch: dt.datetime | None = None) -> str:
    """The text the WHO CSV export has for a cell ``value`` read from column ``column`` (folded name)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = unescape(value)
        return value if value.isascii() else ftfy.fix_encoding(value)
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)) and column in DATE_COLUMNS:
        value = from_excel(value, epoch) if epoch is not None else from_excel(value)
    if isinstance(value, dt.datetime | dt.date):
        if column == PHASE_COLUMN:
            return f"{value.day}-{value.month}"
        if isinstance(value, dt.datetime) and value.time() != dt.time(0):
            return value.isoformat(sep=" ", timespec="seconds")
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.time | dt.timedelta):
        return str(value)
    return str(value)


def _who_sheet(workbook) -> tuple[Any, list[str], dict[str, int], str]:
    seen = []
    for sheet in workbook.worksheets:
        rows = sheet.iter_rows(min_row=1, max_row=1, values_only=True)
        first = next(rows, None) or ()
        header = [cell_text(v, "") for v in first]
        while header and not header[-1].strip():
            header.pop()
        try:
            where, layout = ictrp.read_header(header)
        except FormatError:
            seen.append(f"{sheet.title!r} ({len(header)} columns)")
            continue
        if layout in WHO_LAYOUTS:
            return sheet, header, where, layout
        seen.append(f"{sheet.title!r} ({len(header)} columns, {layout})")
    raise FormatError("The workbook has no sheet with the WHO ICTRP export's header (40 or 58 columns "
                      f"starting `TrialID`, with `Bridging flag truefalse`); its sheets: {', '.join(seen)}.")


def parse(stream: IO[bytes], info: dict) -> Iterator[Row]:
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except READ_ERRORS as error:
        raise FormatError(f"The file is not a readable xlsx workbook ({_why(error)}).") from None
    try:
        try:
            sheet, header, where, layout = _who_sheet(workbook)
        except READ_ERRORS as error:
            raise FormatError(f"The workbook cannot be read ({_why(error)}).") from None
        info["layout"] = f"{layout}-xlsx"
        columns = [ictrp._fold(name) for name in header]
        width = len(header)
        used = set(where.values())
        epoch = getattr(workbook, "epoch", None)
        number = 1
        try:
            for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), 2):
                cells = list(values)
                extra = [v for v in cells[width:] if v is not None and str(v).strip()]
                if extra:
                    yield Row(number, error=f"has values beyond the header's {width} columns.")
                    continue
                cells = (cells + [None] * width)[:width]
                # only the columns the mapping reads are converted (contacts, criteria... are not)
                row = [cell_text(v, c, epoch) if i in used else "" for i, (v, c)
                       in enumerate(zip(cells, columns, strict=True))]
                if not any(cell.strip() for cell in row):
                    continue
                try:
                    yield Row(number, record=ictrp.map_row(row, where, header))
                except RowError as error:
                    yield Row(number, error=str(error))
        except READ_ERRORS as error:
            raise FormatError(f"The workbook cannot be read after row {number} ({_why(error)}).") from None
    finally:
        workbook.close()
