"""监测系统运行状态: the monitor's own rows (alerting.queries_monitor) in the duty operator's words.

Pure: :func:`shape` takes the rows and the thresholds and returns what the page shows — every
stage's processes with their last heartbeat ("3 秒前") and state (正常 / 延迟 / 停止), the lag
where a stage reports one, each canary family's age (燃气（JSON）) with the hop it broke at, and
each watchdog's verdict and findings. Names a person reads are Chinese; the raw instance names,
families and error strings travel beside them (``instance``, ``raw``) for the page's tooltips.

Thresholds (:class:`Thresholds`, from settings): a stage's heartbeat (hazmon/heartbeat.py, every
5 s) is 延迟 after three missed beats — the age at which alerting names a stage as the hop where
the canary stopped — and 停止 after ``watchdog.heartbeat_stale_s``, when the watchdog reports it.
A bridge is seen through the canaries it carries (its row is written by alerting): 延迟 after
three canary intervals without one, 停止 after six (alerting's 监测链路降级 comes at 60 s). A
canary is 延迟 after two intervals and 中断 after three missed ones (alerting raises 监测链路中断
then) or while alerting holds it broken.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerting.queries_monitor import MonitorRows
from hazmon.settings import Settings

__all__ = ["Thresholds", "STAGE_ZH", "HOP_ZH", "FORMAT_ZH", "ago", "family_label", "shape"]

#: seconds between two beats of a stage (hazmon/heartbeat.py EVERY_S)
BEAT_EVERY_S = 5.0
#: the stages in the order the data flows, as the operators name them
STAGE_ZH: dict[str, str] = {"canary": "金丝雀发布程序", "bridge": "接入网关", "detect": "检测服务",
                            "alerting": "告警服务", "console": "操作台服务", "watchdog": "值守看门狗"}
#: canary_state.broken_hop in words (alerting/canary.py's hops)
HOP_ZH: dict[str, str] = {"canary": "金丝雀发布程序", "mqtt": "设备消息服务器", "bridge": "接入网关或消息队列",
                          "kafka": "消息队列", "detect": "检测服务", "database": "数据库", "alerting": "告警服务"}
#: an adapter family's payload format (ingest/adapters/): 燃气（JSON）, 消防（GB/T 26875.3）
FORMAT_ZH: dict[str, str] = {"gasjson": "JSON", "elevator_json": "JSON", "firejson": "JSON",
                             "hazmon_json": "通用JSON", "senml": "SenML", "gbt26875": "GB/T 26875.3"}
_FAMILY_DOMAIN = {"gasjson": "燃气", "elevator_json": "电梯", "firejson": "消防", "gbt26875": "消防",
                  "hazmon_json": "通用", "senml": "通用"}
#: the watchdog's checks (hazwatch/texts.py PROBLEMS, by the part they watch)
CHECK_ZH: dict[str, str] = {"alerting_down": "告警服务运行", "db_unreachable": "数据库连接",
                            "db_refuses_writes": "数据库写入", "sms_failing": "报警短信发送",
                            "sms_unreachable": "短信接口连接", "outbox_stuck": "待发消息",
                            "canary_broken": "监测链路"}
STATE_ZH = {"ok": "正常", "late": "延迟", "down": "停止", "broken": "中断", "never": "未到达"}
VERDICT_ZH = {"ok": "正常", "degraded": "降级", "down": "故障"}
#: without these the centre is blind (停止 when absent); without these it is unwatched (延迟)
_CORE, _WATCHERS = ("detect", "alerting"), ("canary", "watchdog")
_DOMAIN_ORDER = {"gas": 0, "elevator": 1, "fire": 2}
_RANK = {"ok": 0, "never": 1, "late": 1, "down": 2, "broken": 2}
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_HOST_PID = re.compile(r"^(?P<host>.+):\d+$")
#: a restarted process's earlier rows within this window are counted as its starts
_RESTART_WINDOW_S = 600.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    beat_late_s: float = 3 * BEAT_EVERY_S
    beat_down_s: float = 30.0
    canary_every_s: float = 10.0  # the publisher's interval (its heartbeat's detail says it)
    watchdog_down_s: float = 30.0

    @classmethod
    def from_settings(cls, s: Settings) -> Thresholds:
        late = 3 * BEAT_EVERY_S
        return cls(beat_late_s=late, beat_down_s=max(s.watchdog.heartbeat_stale_s, late),
                   watchdog_down_s=s.watchdog.alarm_after_s)


def ago(age_s: float | None) -> str:
    """How long ago, in words: 3 秒前, 5 分钟前, 2 小时前, 3 天前; 从未 for never."""
    if age_s is None:
        return "从未"
    s = max(0, int(age_s))
    if s < 60:
        return f"{s} 秒前"
    if s < 3600:
        return f"{s // 60} 分钟前"
    if s < 86400:
        return f"{s // 3600} 小时前"
    return f"{s // 86400} 天前"


def family_label(family: str, domain_zh: str = "") -> str:
    domain = domain_zh.split("（")[0] or _FAMILY_DOMAIN.get(family, "其他")
    return f"{domain}（{FORMAT_ZH.get(family, '其他格式')}）"


def _readable(text: str) -> tuple[str, str]:
    """(what a person reads, the raw text for the tooltip): a detail carrying an English error
    string shows only its Chinese head (数据库无法连接：connection refused → 数据库无法连接)."""
    text = str(text or "")
    if not _LATIN_WORD.search(text):
        return text, ""
    head = text.split("：")[0]
    return ("" if _LATIN_WORD.search(head) else head), text


def _count(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return int(v)
    if isinstance(v, Mapping):  # per partition
        parts = [_count(x) for x in v.values()]
        return sum(p for p in parts if p is not None)
    return None


def _facts(stage: str, d: Mapping[str, Any]) -> list[str]:
    out = []
    for key, words in (("consumed", "已消费 {:,} 条"), ("readings", "已处理读数 {:,} 条"), ("events", "事件 {:,} 条"),
                       ("published", "已发布 {:,} 次")):
        n = _count(d.get(key))
        if n is not None:
            out.append(words.format(n))
    if stage == "canary" and d.get("mqtt_ok") is False:
        out.append("无法发布到设备消息服务器")
    if stage == "bridge" and d.get("via") == "canary":
        out.append("以金丝雀数据判断")
    if d.get("last_error"):
        out.append("最近有错误")
    return out


def _host(instance: Any) -> str:
    m = _HOST_PID.match(str(instance))
    return m.group("host") if m else ""


def _state(age: float, late: float, down: float) -> str:
    return "down" if age > down else "late" if age > late else "ok"


def _stage_rows(beats: Sequence[Mapping[str, Any]], th: Thresholds, now: datetime) -> list[dict[str, Any]]:
    canary_every = max((float(b["detail"].get("every_s") or 0) for b in beats if b["stage"] == "canary"),
                       default=0.0) or th.canary_every_s
    by_stage: dict[str, list[Mapping[str, Any]]] = {}
    for b in beats:
        by_stage.setdefault(str(b["stage"]), []).append(b)
    out = []
    order = list(STAGE_ZH)
    for stage in sorted(by_stage, key=lambda s: (order.index(s) if s in order else len(order), s)):
        rows = by_stage[stage]
        late, down = ((3 * canary_every, 6 * canary_every) if stage == "bridge"
                      else (th.beat_late_s, th.beat_down_s))
        kept: list[dict[str, Any]] = []
        for b in rows:
            age = float(b["age_s"])
            host = _host(b["instance"])
            same = [o for o in rows if o is not b and host and _host(o["instance"]) == host]
            # a restarted process is a new host:pid row: the old one is its past, not a stopped process
            if age > late and any(o["started_at"] > b["started_at"] for o in same):
                continue
            starts = 1 + sum(1 for o in same if o["started_at"] < b["started_at"]
                             and (now - o["started_at"]).total_seconds() <= _RESTART_WINDOW_S)
            detail = b["detail"] or {}
            lag = next((_count(detail[k]) for k in ("lag", "consumer_lag") if k in detail), None)
            state = _state(age, late, down)
            facts = _facts(stage, detail)
            if starts > 1:
                facts.insert(0, f"{_RESTART_WINDOW_S / 60:.0f} 分钟内启动 {starts} 次")
            kept.append({"instance": str(b["instance"]), "state": state, "state_zh": STATE_ZH[state],
                         "age_s": round(age, 1), "ago": ago(age), "beat_at": b["beat_at"],
                         "started_at": b["started_at"], "lag": lag, "facts": facts, "starts": starts,
                         "error": str(detail.get("last_error") or "")[:300]})
        many = len(kept) > 1
        for i, r in enumerate(kept, 1):
            r["label"] = f"{STAGE_ZH.get(stage, '其他服务')}{f' {i} 号' if many else ''}"
        worst = max((r["state"] for r in kept), key=_RANK.__getitem__, default="ok")
        out.append({"stage": stage, "name": STAGE_ZH.get(stage, "其他服务"), "state": worst,
                    "state_zh": STATE_ZH[worst], "instances": kept, "late_s": late, "down_s": down})
    return out


def _hops(c: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The time between the canary's stamps: 发布→接入, 接入→检测, 检测→告警服务 (ms)."""
    stamps = [("发布", c.get("published_at")), ("接入", c.get("bridged_at")), ("检测", c.get("detected_at")),
              ("告警服务", c.get("arrived_at"))]
    out = []
    for (a, ta), (b, tb) in zip(stamps, stamps[1:], strict=False):
        if ta is not None and tb is not None:
            out.append({"hop": f"{a}→{b}", "ms": max(0, round((tb - ta).total_seconds() * 1000))})
    return out


def _canary_rows(canaries: Sequence[Mapping[str, Any]], every_s: float) -> list[dict[str, Any]]:
    out = []
    for c in sorted(canaries, key=lambda c: (_DOMAIN_ORDER.get(str(c["domain"]), 9), str(c["family"]))):
        age = None if c["age_s"] is None else float(c["age_s"])
        if c["broken_since"] is not None:
            state = "broken"
        elif age is None:
            state = "never"
        else:
            state = "broken" if age > 3 * every_s else "late" if age > 2 * every_s else "ok"
        hop = HOP_ZH.get(str(c["broken_hop"]), "") if c["broken_hop"] else ""
        if state == "broken" and not hop:
            hop = "待告警服务判定"
        out.append({"family": c["family"], "label": family_label(str(c["family"]), str(c["domain_zh"] or "")),
                    "state": state, "state_zh": STATE_ZH[state], "age_s": None if age is None else round(age, 1),
                    "ago": ago(age), "arrived_at": c["arrived_at"], "broken_since": c["broken_since"],
                    "hop": hop, "hops": _hops(c), "device_id": c["device_id"]})
    return out


def _finding(f: Mapping[str, Any], families: Mapping[str, str]) -> dict[str, Any]:
    check = str(f.get("check", ""))
    kind, _, arg = check.partition(":")
    if check in CHECK_ZH:
        name = CHECK_ZH[check]
    elif kind == "stage":
        name = next((z for k, z in STAGE_ZH.items() if arg.startswith(k)), "其他服务") + "健康端点"
    elif kind == "canary":
        name = f"金丝雀 {families.get(arg) or family_label(arg)}"
    else:
        name = _readable(str(f.get("what", "")))[0] or "其他检查"
    unknown = bool(f.get("unknown"))
    ok = bool(f.get("ok")) and not unknown
    state_zh = "无法检查" if unknown else "正常" if ok else "异常"
    shown, raw = _readable(str(f.get("detail", "")))
    if shown in ("正常", "运行中", "无法检查"):
        shown = ""
    return {"check": check, "name": name, "ok": ok, "unknown": unknown, "state_zh": state_zh,
            "detail": shown, "raw": raw, "paged": bool(f.get("paged")), "since": f.get("since")}


def _watchdog_rows(dogs: Sequence[Mapping[str, Any]], th: Thresholds,
                   families: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for i, w in enumerate(dogs, 1):
        age = float(w["age_s"])
        stopped = age > th.watchdog_down_s
        verdict = str(w["verdict"])
        findings = [_finding(f, families) for f in w["findings"] if isinstance(f, Mapping)]
        findings.sort(key=lambda f: 2 if f["ok"] else 1 if f["unknown"] else 0)  # what is wrong first
        paging = ""
        if w["paging_since"] is not None and w["paged_about"]:
            paging = str(w["paged_about"])
        state = "down" if stopped else {"ok": "ok", "degraded": "late"}.get(verdict, "down")
        out.append({"label": "值守看门狗" + (f" {i} 号" if len(dogs) > 1 else ""), "instance": w["instance"],
                    "state": state, "stopped": stopped, "verdict": verdict,
                    "verdict_zh": "看门狗已停止检查" if stopped else VERDICT_ZH.get(verdict, "未知"),
                    "checked_at": w["checked_at"], "age_s": round(age, 1), "ago": ago(age),
                    "paging": paging, "paging_since": w["paging_since"], "findings": findings})
    return out


def shape(rows: MonitorRows, th: Thresholds) -> dict[str, Any]:
    """The page's JSON (see the module's docstring)."""
    every = max((float(b["detail"].get("every_s") or 0) for b in rows.heartbeats if b["stage"] == "canary"),
                default=0.0) or th.canary_every_s
    stages = _stage_rows(rows.heartbeats, th, rows.now)
    canaries = _canary_rows(rows.canaries, every)
    families = {str(c["family"]): str(c["label"]) for c in canaries}
    dogs = _watchdog_rows(rows.watchdogs, th, families)
    states = [s["state"] for s in stages] + [c["state"] for c in canaries] + [w["state"] for w in dogs]
    present = {s["stage"] for s in stages}
    missing = [z for k, z in STAGE_ZH.items() if k not in present]
    # a stage with no row at all is worse than a late one: detection or alerting may never have run
    states += ["down" for k in _CORE if k not in present] + ["late" for k in _WATCHERS if k not in present]
    worst = max(states, key=_RANK.__getitem__, default="down")
    if worst == "ok":
        words = "运行正常"
    elif any(k not in present for k in _CORE):
        words = "、".join(STAGE_ZH[k] for k in _CORE if k not in present) + "未上报心跳"
    elif _RANK[worst] >= 2:
        words = "有服务停止或链路中断"
    else:
        words = "有服务延迟或未上报心跳"
    problems = [f"{i['label']}{i['state_zh']}（最后心跳 {i['ago']}）" for st in stages for i in st["instances"]
                if i["state"] != "ok"]
    problems += [f"{c['label']}监测链路中断于{c['hop']}" if c["state"] == "broken"
                 else f"{c['label']}金丝雀数据{c['state_zh']}" for c in canaries if c["state"] != "ok"]
    problems += [f"{w['label']}{w['verdict_zh']}" + "".join(
        f"：{'、'.join(bad)}" for bad in [[f["name"] for f in w["findings"] if not f["ok"] and not f["unknown"]]]
        if bad and not w["stopped"]) for w in dogs if w["state"] != "ok"]
    problems += [f"{z}未上报心跳" for k, z in STAGE_ZH.items() if k in _CORE + _WATCHERS and k not in present]
    return {"as_of": rows.now, "state": worst, "words": words, "problems": problems,
            "stages": stages, "missing": missing, "canaries": canaries, "canary_every_s": every,
            "watchdogs": dogs,
            "thresholds": {"beat_late_s": th.beat_late_s, "beat_down_s": th.beat_down_s,
                           "canary_late_s": 2 * every, "canary_broken_s": 3 * every,
                           "watchdog_down_s": th.watchdog_down_s}}
