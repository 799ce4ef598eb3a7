"""The 通报 as an Excel file (openpyxl): 概况 (title, period, the overview, 存在问题 and 下一步工作)
and one sheet per table with Chinese headers; figures stay numbers (a rate as a fraction shown
as 0.0%, a time in minutes)."""

from __future__ import annotations

import io

from alerting.bulletin.model import BulletinDoc, ColumnKind

__all__ = ["xlsx_bytes", "NUMBER_FORMAT"]

NUMBER_FORMAT: dict[ColumnKind, str] = {"pct": "0.0%", "pp": "+0.0%;-0.0%;0.0%", "rel": "+0.0%;-0.0%;0.0%",
                                        "int": "0", "dur": "0.0", "text": "@"}


def xlsx_bytes(doc: BulletinDoc) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "概况"
    ws.column_dimensions["A"].width = 120
    lines: list[tuple[str, bool]] = [(doc.title, True), (doc.period, False), (doc.addressee, False),
                                     (doc.opening, False)]
    for sec in doc.sections:
        lines.append((sec.heading, True))
        lines += [(p, False) for p in sec.paragraphs]
        lines += [(f"见工作表「{t.sheet}」：{t.title}", False) for t in sec.tables]
    lines += [(doc.issuer, False), (doc.date, False)]
    for i, (text, bold) in enumerate(lines, 1):
        c = ws.cell(row=i, column=1, value=text)
        c.alignment = Alignment(wrap_text=True, vertical="top")
        if bold:
            c.font = Font(bold=True, size=14 if i == 1 else 12)
    for t in doc.tables():
        sh = wb.create_sheet(t.sheet[:31])
        sh.cell(row=1, column=1, value=t.title).font = Font(bold=True, size=12)
        for j, col in enumerate(t.columns, 1):
            title = f"{col.title}（分钟）" if col.kind == "dur" else col.title
            sh.cell(row=2, column=j, value=title).font = Font(bold=True)
            sh.column_dimensions[get_column_letter(j)].width = max(10, 2 * len(title) + 2) if j > 1 else 24
        for i, row in enumerate(t.rows, 3):
            for j, (col, v) in enumerate(zip(t.columns, row, strict=True), 1):
                value = v / 60 if col.kind == "dur" and isinstance(v, int | float) else v
                c = sh.cell(row=i, column=j, value=value)
                if isinstance(value, int | float):
                    c.number_format = NUMBER_FORMAT[col.kind]
        if t.note:
            sh.cell(row=len(t.rows) + 4, column=1, value=f"注：{t.note}")
        sh.freeze_panes = "C3" if len(t.columns) > 6 else "B3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
