"""The what-if replay's report as a person reads it (``hazmon replay``): Chinese tables whose
columns line up with Chinese text (a CJK character is two columns wide on a terminal)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerting.replay import AlertDiff, ReplayResult

__all__ = ["CST", "render_text", "table", "width"]

CST = timezone(timedelta(hours=8), "CST")
_VERDICT_ZH = {"real": "真实", "false": "误报", "test": "测试", "fault": "故障"}
_LEVEL_ZH = {
    "reminder": "工作提醒单",
    "warning": "风险警示单",
    "supervision": "问题督办单",
    "accountability": "问责建议单",
}


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def table(head: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> list[str]:
    """Rows under a head, columns padded to their widest cell (numbers right-aligned: ``right``)."""
    cells = [[str(c) for c in head]] + [[str(c) for c in r] for r in rows]
    widths = [max(width(r[i]) for r in cells) for i in range(len(head))]
    out = []
    for r in cells:
        parts = []
        for i, c in enumerate(r):
            pad = " " * (widths[i] - width(c))
            parts.append(pad + c if i in right else c + pad)
        out.append("  ".join(parts).rstrip())
    return out


def _t(at: datetime | None) -> str:
    return at.astimezone(CST).strftime("%m-%d %H:%M:%S") if at else "—"


def _signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def _rate(num: int, den: int) -> str:
    return f"{num / den * 100:.1f}%" if den else "—"


def _alert_rows(diffs: Sequence[AlertDiff]) -> list[str]:
    rows = [
        (
            d.device_id,
            d.model or "—",
            d.site_name,
            d.kind_zh,
            d.severity_zh,
            _t(d.starts_at),
            _t(d.ends_at) if d.ends_at else "未恢复",
            _VERDICT_ZH.get(d.verdict or "", "未研判" if d.verdict is None else d.verdict),
            "、".join(d.roles_zh) or "—",
        )
        for d in diffs
    ]
    return [
        "  " + line
        for line in table(
            ("设备", "型号", "场所", "类型", "级别", "开始时间", "恢复时间", "研判", "通知对象"), rows
        )
    ]


def render_text(r: ReplayResult) -> str:
    start, end = r.start.astimezone(CST), r.end.astimezone(CST)
    scope = "、".join(
        x for x in (f"厂商 {r.vendor}" if r.vendor else "", f"型号 {r.model}" if r.model else "") if x
    )
    lines = [
        f"阈值与路由模拟回放：{start:%Y-%m-%d %H:%M} 至 {end:%Y-%m-%d %H:%M}（北京时间）"
        f"，范围：{scope or '全部设备'}",
        f"拟议阈值：{r.detectors_file or '（同现行）'}；现行阈值：{r.live_detectors_file}",
        f"拟议路由：{r.routes_file or '（同现行）'}；现行路由：{r.live_routes_file}",
        f"回放数据 {r.rows} 条（读数和设备上报，{r.records} 条报文），未写入任何实时数据；"
        f"现行配置回放的告警中 {r.live_in_store}/{r.live_alerts} 起与已存告警一致",
        "",
    ]
    lines += table(
        ("指标", "现行配置", "拟议配置", "差异"),
        [
            ("告警（起）", r.live_alerts, r.proposed_alerts, _signed(r.proposed_alerts - r.live_alerts)),
            (
                "通知消息（次）",
                r.messages_live,
                r.messages_proposed,
                _signed(r.messages_proposed - r.messages_live),
            ),
            ("短信（条）", r.sms_live, r.sms_proposed, _signed(r.sms_proposed - r.sms_live)),
            *(
                (f"{_LEVEL_ZH[lv]}（份）", a, b, _signed(b - a))
                for lv, a, b in (
                    (lv, r.notices_live.get(lv, 0), r.notices_proposed.get(lv, 0)) for lv in _LEVEL_ZH
                )
                if a or b
            ),
        ],
        right=(1, 2, 3),
    )
    lines += [
        "",
        f"误报率（本时段已存告警 {r.stored_alerts} 起，已研判 {r.judged} 起，误报 {r.false_alarms} 起）："
        f"{_rate(r.false_alarms, r.judged)}",
    ]
    if r.models:
        lines += ["", "按厂商型号："]
        lines += [
            "  " + line
            for line in table(
                ("厂商", "型号", "现行告警", "拟议告警", "差异", "已存告警", "已研判", "误报", "误报率"),
                [
                    (
                        m.vendor or "未登记",
                        m.model or "—",
                        m.live,
                        m.proposed,
                        _signed(m.proposed - m.live),
                        m.stored,
                        m.judged,
                        m.false_alarms,
                        _rate(m.false_alarms, m.judged),
                    )
                    for m in r.models
                ],
                right=(2, 3, 4, 5, 6, 7, 8),
            )
        ]
    lines += ["", f"新增告警 {len(r.added)} 起" + ("：" if r.added else "")]
    if r.added:
        lines += _alert_rows(r.added)
    lines += [
        "",
        f"减少告警 {len(r.removed)} 起（其中已研判 {r.removed_judged} 起，研判为误报 {r.removed_false} 起）"
        + ("：" if r.removed else ""),
    ]
    if r.removed:
        lines += _alert_rows(r.removed)
    lines += ["", "按角色的通知（条，含各渠道；括号内为短信）："]
    rows = [
        (
            x.role_zh,
            f"{x.live}（{x.sms_live}）",
            f"{x.proposed}（{x.sms_proposed}）",
            _signed(x.proposed - x.live),
            _signed(x.undeliverable_proposed - x.undeliverable_live)
            if x.undeliverable_live or x.undeliverable_proposed
            else "",
            f"{x.held_live} → {x.held_proposed}" if x.held_live or x.held_proposed else "",
        )
        for x in r.roles
        if x.live
        or x.proposed
        or x.undeliverable_live
        or x.undeliverable_proposed
        or x.held_live
        or x.held_proposed
    ]
    head = ["角色", "现行", "拟议", "差异", "未送达差异", "夜间暂缓（现行 → 拟议）"]
    shown = [i for i in range(len(head)) if i < 4 or any(row[i] for row in rows)]  # empty columns left out
    lines += [
        "  " + line
        for line in table(
            [head[i] for i in shown],
            [[row[i] for i in shown] for row in rows] or [("—", 0, 0, 0)],
            right=(1, 2, 3),
        )
    ]
    lines += [
        "",
        f"生成时间 {datetime.now(UTC).astimezone(CST):%Y-%m-%d %H:%M}；回放不模拟静默；"
        "四单按已存告警的实际确认和处置计，新增告警按无人确认计。",
    ]
    return "\n".join(lines)
