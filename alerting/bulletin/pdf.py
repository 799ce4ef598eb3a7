"""The 通报 as PDF (reportlab; charts from matplotlib as images). The CJK font is embedded as a
TrueType subset with its Unicode map, so the text can be searched and extracted (pdftotext)."""

from __future__ import annotations

import io
from functools import cache

from alerting.bulletin.charts import chart_png, cjk_font
from alerting.bulletin.model import BulletinDoc

__all__ = ["pdf_bytes", "FONT"]

FONT = "HazmonCJK"


@cache
def _register() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    path = cjk_font()
    kw = {"subfontIndex": 0} if path.suffix.lower() == ".ttc" else {}
    pdfmetrics.registerFont(TTFont(FONT, str(path), **kw))
    return FONT


def pdf_bytes(doc: BulletinDoc, *, charts: bool = True) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = _register()
    body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=17, firstLineIndent=21,
                          wordWrap="CJK")
    plain = ParagraphStyle("plain", parent=body, firstLineIndent=0)
    title = ParagraphStyle("title", parent=plain, fontSize=17, leading=26, alignment=TA_CENTER)
    center = ParagraphStyle("center", parent=plain, alignment=TA_CENTER)
    right = ParagraphStyle("right", parent=plain, alignment=TA_RIGHT)
    heading = ParagraphStyle("heading", parent=plain, fontSize=12.5, leading=22, spaceBefore=6)
    cell = ParagraphStyle("cell", parent=plain, fontSize=7, leading=9)
    note = ParagraphStyle("note", parent=plain, fontSize=8, leading=11, textColor=colors.grey)

    buf = io.BytesIO()
    page = landscape(A4)
    pdf = SimpleDocTemplate(buf, pagesize=page, leftMargin=1.6 * cm, rightMargin=1.6 * cm, topMargin=1.5 * cm,
                            bottomMargin=1.5 * cm, title=doc.title, author=doc.issuer)
    width = page[0] - 3.2 * cm
    story: list = [Paragraph(doc.title, title), Paragraph(doc.period, center), Spacer(1, 8),
                   Paragraph(doc.addressee, plain), Paragraph(doc.opening, body)]
    for sec in doc.sections:
        story.append(Paragraph(sec.heading, heading))
        story += [Paragraph(p, body) for p in sec.paragraphs]
        for chart in sec.charts if charts else ():
            png = chart_png(chart)
            img = Image(io.BytesIO(png))
            scale = min(width * 0.75 / img.drawWidth, 1.0)
            img.drawWidth, img.drawHeight = img.drawWidth * scale, img.drawHeight * scale
            story.append(img)
        for t in sec.tables:
            story.append(Paragraph(t.title, center))
            data = [[Paragraph(c.title, cell) for c in t.columns]]
            data += [[Paragraph(x, cell) for x in row] for row in t.text_rows()]
            tbl = Table(data, repeatRows=1, hAlign="CENTER",
                        colWidths=[width / len(t.columns)] * len(t.columns) if len(t.columns) > 8 else None)
            tbl.setStyle(TableStyle([
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]))
            story.append(tbl)
            if t.note:
                story.append(Paragraph(f"注：{t.note}", note))
            story.append(Spacer(1, 6))
    story += [Spacer(1, 12), Paragraph(doc.issuer, right), Paragraph(doc.date, right)]
    pdf.build(story)
    return buf.getvalue()
