"""The official 通报 (issue 15): a period's :class:`alerting.kpi.Bulletin` composed into the form of
a county bulletin (seed 004) — :mod:`compose` — and rendered as DOCX, PDF (with charts) and XLSX,
all from that one composition so the three files say the same.

:func:`make_files` renders everything in memory first: a bad period (InvalidAction from
alerting.kpi) or a missing font refuses before any file is written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from alerting.bulletin.compose import compose
from alerting.bulletin.model import BulletinDoc
from alerting.bulletin.targets import Targets, TargetsError, load_targets
from alerting.errors import InvalidAction
from alerting.kpi import Bulletin

__all__ = ["FORMATS", "MEDIA_TYPES", "compose", "render", "make_files", "write_files", "parse_formats",
           "load_targets", "Targets", "TargetsError", "BulletinDoc"]

FORMATS = ("docx", "pdf", "xlsx")
MEDIA_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def parse_formats(text: str) -> tuple[str, ...]:
    """``docx,pdf`` → ("docx", "pdf"); an unknown format is refused in Chinese."""
    wanted = tuple(dict.fromkeys(x.strip().lower() for x in text.split(",") if x.strip()))
    bad = [x for x in wanted if x not in FORMATS]
    if bad or not wanted:
        raise InvalidAction(f"无法识别的文件格式 {'、'.join(bad) or '（空）'}：可选 docx、pdf、xlsx")
    return wanted


def render(doc: BulletinDoc, fmt: str) -> bytes:
    if fmt == "docx":
        from alerting.bulletin.docx import docx_bytes

        return docx_bytes(doc)
    if fmt == "pdf":
        from alerting.bulletin.pdf import pdf_bytes

        return pdf_bytes(doc)
    if fmt == "xlsx":
        from alerting.bulletin.xlsx import xlsx_bytes

        return xlsx_bytes(doc)
    raise InvalidAction(f"无法识别的文件格式 {fmt}：可选 docx、pdf、xlsx")


def make_files(b: Bulletin, targets: Targets, formats: Iterable[str] = FORMATS) -> dict[str, bytes]:
    """``{"bulletin_2026-11.docx": bytes, ...}``, every file rendered before any is written."""
    doc = compose(b, targets)
    return {f"{doc.slug}.{fmt}": render(doc, fmt) for fmt in formats}


def write_files(files: dict[str, bytes], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        p = out / name
        tmp = p.with_suffix(p.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(p)
        paths.append(p)
    return paths
