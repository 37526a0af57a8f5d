"""Tables as files a spreadsheet opens: CSV (UTF-8 with a BOM, so Excel reads Chinese) and XLSX
(openpyxl; numbers stay numbers, times are cells of type date). Every export of a table — reports,
the coverage table — goes through here, so user text is neutralised in one place: a cell that
starts with = + - @ (or a tab / carriage return) would be run as a formula by Excel or WPS
("CSV injection"), so text gets a leading apostrophe in CSV and is stored as a plain string in XLSX."""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any, Iterable, Sequence
from urllib.parse import quote

from flask import Response, stream_with_context
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_text(value: Any) -> str:
    """One CSV cell: numbers as written, times as 2026-11-25 14:03, text safe from formula evaluation."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def attachment(filename: str) -> str:
    # RFC 6266/5987: an ASCII fallback and the UTF-8 name (Chinese file names)
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def csv_response(headers: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    """A CSV download, streamed row by row (a million rows never sit in memory)."""
    def generate():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        buf.write("\ufeff")
        writer.writerow([csv_text(h) for h in headers])
        for n, row in enumerate(rows, start=1):
            writer.writerow([csv_text(v) for v in row])
            if n % 500 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": attachment(filename), "Cache-Control": "private, no-store"})


# Number formats a column may ask for (Excel's codes); a column without one keeps the cell's own.
NUMBER_FORMATS = {"metres": "#,##0.0", "share": "0.0%", "count": "0", "decimal": "0.00", "text": "@",
                  "time": "yyyy-mm-dd hh:mm"}


@dataclass
class Sheet:
    """One sheet of a workbook: a bold frozen header row, then the rows; `kinds` (NUMBER_FORMATS keys,
    one per column) and `widths` (characters) are optional."""
    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Any]]
    kinds: Sequence[str] | None = None
    widths: Sequence[int] | None = None


def xlsx_bytes(*sheets: Sheet) -> bytes:
    """An XLSX workbook (write-only: a million rows stream through): numbers and times typed, text
    always stored as text."""
    wb = Workbook(write_only=True)
    for sheet in sheets:
        ws = wb.create_sheet(title=sheet.title[:31])
        for i, width in enumerate(sheet.widths or (), start=1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = "A2"
        bold = Font(bold=True)
        header_cells = []
        for h in sheet.headers:
            cell = WriteOnlyCell(ws, value=str(h))
            cell.font = bold
            header_cells.append(cell)
        ws.append(header_cells)
        formats = [NUMBER_FORMATS[k] for k in sheet.kinds] if sheet.kinds else None
        for row in sheet.rows:
            ws.append([_xlsx_cell(ws, v, formats[i] if formats else None) for i, v in enumerate(row)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _xlsx_cell(ws, value: Any, number_format: str | None):
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula, whatever the text starts with
    if isinstance(value, dt.datetime):
        cell.number_format = NUMBER_FORMATS["time"]
    elif number_format is not None and value is not None:
        cell.number_format = number_format
    return cell


def xlsx_response(body: bytes, filename: str) -> Response:
    return Response(body, mimetype=XLSX_TYPE,
                    headers={"Content-Disposition": attachment(filename), "Cache-Control": "private, no-store"})
