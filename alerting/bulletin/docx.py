"""The 通报 as a Word file (python-docx): headings, paragraphs, tables and charts, 仿宋/黑体 where
the reader's Word has them (the East Asian font is named in the run's rFonts)."""

from __future__ import annotations

import io

from alerting.bulletin.charts import chart_png
from alerting.bulletin.model import BulletinDoc

__all__ = ["docx_bytes"]


def _east_asia(run: object, font: str) -> None:
    from docx.oxml.ns import qn

    r = run._element  # type: ignore[attr-defined]  # noqa: SLF001 - python-docx has no API for eastAsia
    rpr = r.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    fonts.set(qn("w:eastAsia"), font)
    run.font.name = font  # type: ignore[attr-defined]


def docx_bytes(doc: BulletinDoc, *, charts: bool = True) -> bytes:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt

    d = Document()
    for s in d.sections:
        s.left_margin = s.right_margin = Cm(2.0)
    title = d.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    r = title.add_run(doc.title)
    r.bold, r.font.size = True, Pt(18)
    _east_asia(r, "方正小标宋简体")
    p = d.add_paragraph(doc.period)
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    d.add_paragraph(doc.addressee)
    d.add_paragraph(doc.opening).paragraph_format.first_line_indent = Pt(24)
    for sec in doc.sections:
        h = d.add_heading(sec.heading, level=2)
        for run in h.runs:
            _east_asia(run, "黑体")
        for text in sec.paragraphs:
            d.add_paragraph(text).paragraph_format.first_line_indent = Pt(24)
        for chart in sec.charts if charts else ():
            d.add_picture(io.BytesIO(chart_png(chart)), width=Cm(16))
        for t in sec.tables:
            cap = d.add_paragraph()
            cap.alignment = WD_ALIGN_PARAGRAPH.CENTER
            cap.add_run(t.title).bold = True
            table = d.add_table(rows=1, cols=len(t.columns))
            table.style = "Table Grid"
            for cell, col in zip(table.rows[0].cells, t.columns, strict=True):
                cell.text = col.title
                for run in cell.paragraphs[0].runs:
                    run.bold, run.font.size = True, Pt(8)
            for row in t.text_rows():
                cells = table.add_row().cells
                for cell, text in zip(cells, row, strict=True):
                    cell.text = text
                    for run in cell.paragraphs[0].runs:
                        run.font.size = Pt(8)
            if t.note:
                note = d.add_paragraph().add_run(f"注：{t.note}")
                note.font.size = Pt(8)
    sign = d.add_paragraph(doc.issuer)
    sign.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    when = d.add_paragraph(doc.date)
    when.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()
