"""The official 通报 files on the scripted month (tests/alerting/kpi_month.py's hand-computed
figures): the DOCX read back with python-docx, the PDF's text with pdftotext (the CJK font is
embedded with its Unicode map), the XLSX with openpyxl — the same figures as the Bulletin in all
three; `hazmon report --out` writes them; a period not begun or without data writes nothing.
The first page is rendered with pdftoppm into docs/screenshots/bulletin_page1.png."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from kpi_month import END, NOW, START, load_district, month_service, script_month

from alerting.bulletin import compose, load_targets, make_files
from alerting.clock import ManualClock
from alerting.kpi import bulletin

pytestmark = pytest.mark.asyncio(loop_scope="session")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
NEEDS_POPPLER = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                                   reason="poppler-utils missing (scripts/setup_system.sh installs it)")


@pytest.fixture
async def month(pg_dsn: str, tmp_path: Path):
    await load_district(pg_dsn, tmp_path)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    clock = ManualClock(START)
    svc = await month_service(pool, clock)
    try:
        expected = await script_month(pool, svc, clock)
        async with pool.acquire() as c:
            b = await bulletin(c, start=START, end=END, now=NOW)
        yield b, expected
    finally:
        await svc.stop()
        await pool.close()


def _pct(v: float) -> str:
    return f"{v * 100:.1f}%"


def _docx_text(data: bytes) -> tuple[str, list[list[list[str]]]]:
    from docx import Document

    d = Document(io.BytesIO(data))
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in d.tables]
    return "\n".join(p.text for p in d.paragraphs), tables


def _run(cmd: list[str]) -> str:
    """poppler's tools (short, local: run inline in the test)."""
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


def _pdf_text(path: Path) -> str:
    return _run(["pdftotext", "-layout", str(path), "-"])


def _overview(x) -> str:
    return (f"2026年11月，全区共接入监测设备{x.devices}台，设备在线率{_pct(x.online_rate)}"
            f"（同比上升12.1个百分点）；应安装燃气报警装置场所{x.sites_required}处，已覆盖{x.sites_covered}处，"
            f"安装覆盖率{_pct(x.coverage_rate)}（同比上升25.0个百分点）")


async def test_the_three_files_show_the_month_s_figures(month, tmp_path: Path) -> None:
    b, x = month
    targets = load_targets()
    doc = compose(b, targets)
    assert doc.title == "2026年11月安全生产监测预警工作情况通报"
    assert doc.period == "统计时段：2026年11月1日至2026年11月30日"
    assert doc.opening.startswith(_overview(x)), doc.opening
    assert f"处置率{_pct(x.closure_rate)}（同比上升35.0个百分点）" in doc.opening
    assert f"误报率{_pct(x.false_alarm_rate)}（同比下降35.7个百分点）" in doc.opening
    assert "排查隐患4处，已整改2处，整改率50.0%（同比上升16.7个百分点）" in doc.opening
    problems = next(s for s in doc.sections if s.heading.endswith("存在问题"))
    text = "".join(problems.paragraphs)
    # 西山镇's gas detector offline since the 26th: below 95% online, its site not covered
    west = b.row("township", "T2")
    assert "设备在线率低于95.0%的目标：" in text and f"西山镇（{_pct(west.online_rate)}）" in text
    assert "东城街道（" not in text.split("设备在线率低于")[1].split("。")[0]
    files = make_files(b, targets)
    assert set(files) == {"bulletin_2026-11.docx", "bulletin_2026-11.pdf", "bulletin_2026-11.xlsx"}

    # DOCX
    body, tables = _docx_text(files["bulletin_2026-11.docx"])
    assert doc.title in body and doc.opening in body and text.split("：")[0] in body
    town_table = next(t for t in tables if t[0][:2] == ["排名", "名称"] and "西山镇" in str(t))
    row = next(r for r in town_table if r[1] == "西山镇")
    assert row[3] == _pct(west.online_rate) and row[0] == str(west.rank)
    headline = next(t for t in tables if t[0][0] == "指标")
    assert ["设备在线率", _pct(x.online_rate)] == next(r for r in headline if r[0] == "设备在线率")[:2]
    assert next(r for r in headline if r[0] == "报警数")[1] == str(x.alerts)

    # PDF: the text extracts (fonts embedded with their Unicode map)
    if shutil.which("pdftotext"):
        pdf = tmp_path / "b.pdf"
        pdf.write_bytes(files["bulletin_2026-11.pdf"])
        flat = "".join(_pdf_text(pdf).split())
        assert doc.title in flat
        assert "".join(_overview(x).split()) in flat
        assert "存在问题" in flat and f"西山镇（{_pct(west.online_rate)}）" in flat
        fonts = _run(["pdffonts", str(pdf)])
        cjk = [line for line in fonts.splitlines()[2:] if "WenQuanYi" in line or "Droid" in line]
        # the CJK font embedded, as a subset, with its Unicode map (emb sub uni); reportlab's
        # Helvetica of its empty initial state is listed unembedded, drawing nothing
        assert cjk and all(line.split()[-5:-2] == ["yes", "yes", "yes"] for line in cjk), fonts

    # XLSX: numbers, Chinese headers
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(files["bulletin_2026-11.xlsx"]))
    assert wb.sheetnames[:2] == ["概况", "主要指标"] and "按镇街" in wb.sheetnames
    assert wb["概况"]["A1"].value == doc.title and wb["概况"]["A4"].value == doc.opening
    sh = wb["按镇街"]
    head = [c.value for c in sh[2]]
    assert head[:4] == ["排名", "名称", "设备数", "在线率"]
    rows = {r[1]: r for r in sh.iter_rows(min_row=3, values_only=True) if r[1]}
    assert rows["西山镇"][3] == pytest.approx(west.online_rate)
    assert rows["东城街道"][6] == b.row("township", "T1").alerts
    assert sh.cell(row=3, column=4).number_format == "0.0%"
    for name in wb.sheetnames:
        for cell in wb[name][2 if name != "概况" else 1]:
            assert not (isinstance(cell.value, str) and cell.value.isascii() and cell.value.isalpha()), cell.value


@NEEDS_POPPLER
async def test_report_writes_the_files_and_the_first_page_png(month, pg_dsn: str, tmp_path: Path) -> None:
    b, x = month
    out = tmp_path / "out"
    env = {**os.environ, "HAZMON_POSTGRES__DSN": pg_dsn}
    # `hazmon report` reads "now" from the wall clock: the month is over, so it is the same month
    proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "hazmon.cli", "report", "--period",
                                   "2026-11", "--out", str(out), "--format", "pdf,xlsx"],
                                   capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["bulletin_2026-11.pdf", "bulletin_2026-11.xlsx"]
    assert "通报文件：" in proc.stdout
    flat = "".join(_pdf_text(out / "bulletin_2026-11.pdf").split())
    assert f"设备在线率{_pct(x.online_rate)}" in flat and f"处置率{_pct(x.closure_rate)}" in flat
    png = tmp_path / "page"
    _run(["pdftoppm", "-png", "-r", "90", "-f", "1", "-l", "1", "-singlefile", str(out / "bulletin_2026-11.pdf"),
          str(png)])
    data = (tmp_path / "page.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "bulletin_page1.png").write_bytes(data)


async def test_a_bad_period_writes_nothing(month, pg_dsn: str, tmp_path: Path) -> None:
    env = {**os.environ, "HAZMON_POSTGRES__DSN": pg_dsn}
    for args, words in ((["--period", "2099-01"], "所选时段尚未开始"),
                        (["--period", "2024-03"], "所选时段内没有任何监测数据"),
                        (["--period", "2026-11", "--format", "doc"], "无法识别的文件格式 doc")):
        out = tmp_path / "none"
        proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "hazmon.cli", "report", *args,
                                       "--out", str(out)], capture_output=True, text=True, env=env,
                                       timeout=60, check=False)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
        assert not out.exists()
