"""The 通报's charts (matplotlib, Agg) as PNG bytes, with a CJK font found on this machine
(fonts-wqy-microhei or fonts-noto-cjk, installed by scripts/setup_system.sh)."""

from __future__ import annotations

import io
import threading
from functools import cache
from pathlib import Path

from alerting.bulletin.model import ChartSpec
from alerting.errors import InvalidAction

__all__ = ["cjk_font", "chart_png", "NO_FONT"]

NO_FONT = "未找到中文字体，无法生成PDF：请安装 fonts-wqy-microhei 或 fonts-noto-cjk（scripts/setup_system.sh）"
#: TrueType-outline CJK fonts first: reportlab embeds those (a CFF .otf/.ttc it cannot)
#: pyplot's state is global: one chart at a time (the console renders in worker threads)
_LOCK = threading.Lock()
_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


@cache
def cjk_font() -> Path:
    """The path of a CJK font (InvalidAction in Chinese when none is installed)."""
    for c in _CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    raise InvalidAction(NO_FONT)


def chart_png(spec: ChartSpec, *, dpi: int = 160) -> bytes:
    """A grouped bar chart of ``spec``; a missing figure (None) is drawn as no bar, labelled —."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    font = cjk_font()
    font_manager.fontManager.addfont(str(font))
    name = font_manager.FontProperties(fname=str(font)).get_name()
    with _LOCK, matplotlib.rc_context({"font.family": [name], "axes.unicode_minus": False}):
        n, k = len(spec.categories), max(len(spec.series), 1)
        fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * n + 2), 3.2))
        width = 0.8 / k
        for i, (label, values) in enumerate(spec.series):
            xs = [j + (i - (k - 1) / 2) * width for j in range(n)]
            ys = [(v or 0.0) * (100 if spec.percent else 1) for v in values]
            bars = ax.bar(xs, ys, width, label=label)
            for bar, v in zip(bars, values, strict=True):
                words = "—" if v is None else (f"{v * 100:.0f}%" if spec.percent else f"{v:g}")
                ax.annotate(words, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                            va="bottom", fontsize=7)
        if spec.target is not None:
            ax.axhline(spec.target * 100, color="#c0392b", linestyle="--", linewidth=1, label="目标")
        ax.set_xticks(range(n), spec.categories, fontsize=8)
        if spec.percent:
            ax.set_ylim(0, 115)
            ax.set_ylabel("%")
        ax.set_title(spec.title, fontsize=10)
        ax.legend(fontsize=7, loc="upper right", ncols=min(k + 1, 4), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
    return buf.getvalue()
