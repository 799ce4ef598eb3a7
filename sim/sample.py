"""A deterministic sample district (示范区) for the demo, the tests and the benchmarks.

Same seed, same bytes: the generator draws only from one seeded :class:`random.Random` and
writes rows in primary-key order, so ``data/sample/`` can be committed and regenerated
(``hazmon registry sample data/sample --matrix data/matrix.yaml``) without a diff.

The district: 4 townships/streets (镇/街道) with 3 villages/communities each and a grid member
(网格员) per village; ~240 sites — restaurants (餐饮, gas alarms required), shopping malls
(大型商业综合体), residential property managers with elevators, hospitals, elderly homes (养老院),
labour-intensive factories (劳动密集型企业, 联动警铃和烟感报警), "三合一" premises, schools and
a KTV — and ~1,300 devices over gas, elevator and fire (fire panels with smoke/heat
detectors hanging off them). Five vendors, one per payload adapter the ingest stage ships.
The responsibility matrix follows DOMAIN.md (gas → 住建, elevators → 市监, fire → 应急 + 消防救援,
venue rows for 教育/卫健/文化/民政, and rows for future domains that no device uses yet).

Names, addresses and numbers are invented: phones are in the 139-0000-xxxx range, duty lines
0571-86xxxxxx (duty mobiles 139-5710/5720-xxxx for some duty rooms, the others landline-only),
coordinates in a small box around lon 120.1–120.3, lat 30.2–30.35.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from hazmon.registry import TABLES, TableSpec, dump_geojson, write_csv_table
from sim.sample_boundaries import district_boundaries

__all__ = ["DEFAULT_SEED", "District", "generate", "write_sample", "matrix_yaml", "main"]

DEFAULT_SEED = 20240501

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓彭曾肖田董袁潘于蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃戴莫孔向汤"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力宁鹏飞海波晓燕春梅志国新宇浩然子涵雨欣佳琪俊凯晨瑞"
_PLACES = (
    "江滨 青山 桂花 云栖 锦绣 东方 新城 湖畔 星河 阳光 和平 凤凰 翠苑 紫荆 梧桐 明珠 嘉禾 富春 清波 望江 "
    "金沙 银湖 香樟 百合 兴隆 永安 长乐 福寿 春晖 天和"
).split()
_ROADS = "江滨路 青山路 桂溪大道 云栖路 文一路 学院路 建设路 人民路 解放路 工业路 丰收路 湖滨路 望江路 兴业街 梧桐巷 长乐街".split()

# (id, name, kind, villages: (name, kind)); each township gets a quarter of the map box
_TOWNSHIPS = (
    ("T01", "临江街道", "街道", (("江滨社区", "社区"), ("望江社区", "社区"), ("清波社区", "社区"))),
    ("T02", "青山镇", "镇", (("青山村", "村"), ("石桥村", "村"), ("青山社区", "社区"))),
    ("T03", "桂溪镇", "镇", (("桂溪村", "村"), ("下沙村", "村"), ("桂花社区", "社区"))),
    ("T04", "云栖街道", "街道", (("云栖社区", "社区"), ("梧桐社区", "社区"), ("翠苑社区", "社区"))),
)
_BOX = (120.10, 120.30, 30.20, 30.35)

# Channels of the duty rooms beyond their landline (0571-86…): some have a duty mobile (SMS) and a
# group robot, the others are landline-only (voice call), so the demo runs both paths. Numbers and
# robot keys are invented (139 5710 xxxx / 139 5720 xxxx).
_TOWNSHIP_CHANNELS: dict[str, dict[str, str]] = {
    "T01": {"duty_mobile": "13957100001", "robot": "wecom",
            "robot_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=sample-t01-linjiang"},
    "T02": {"duty_mobile": "13957100002"},
    # T03 桂溪镇 (where the demo's scripted incidents happen: its duty room gets voice calls) and
    # T04 云栖街道: landline only
}
_DEPARTMENT_CHANNELS: dict[str, dict[str, str]] = {
    "zj": {"duty_mobile": "13957200001", "robot": "dingtalk",
           "robot_url": "https://oapi.dingtalk.com/robot/send?access_token=sample-zj-duty",
           "robot_secret": "SEC-sample-zj-0001"},
    "sj": {"robot": "wecom", "robot_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=sample-sj-duty"},
    "yj": {"duty_mobile": "13957200003"},
    "xf": {"duty_mobile": "13957200004"},
    "aw": {"duty_mobile": "13957200014"},
    # the others (教育, 卫健, 文化, 民政, …): landline only
}

DOMAINS = (
    # name, name_zh, default expected reporting interval (s)
    ("gas", "燃气", 60),
    ("elevator", "电梯（特种设备）", 30),
    ("fire", "消防", 300),
    # future domains: matrix rows exist, no device uses them yet (harmless)
    ("hazchem", "重大危险源（危险化学品）", 60),
    ("power", "电力", 300),
    ("water", "水利（防汛防旱）", 600),
    ("forest_fire", "森林防火", 600),
    ("traffic", "道路交通", 300),
)

DEPARTMENTS = (
    ("zj", "区住房和城乡建设局（住建部门）"),
    ("sj", "区市场监督管理局（市监部门）"),
    ("yj", "区应急管理局（应急部门）"),
    ("xf", "区消防救援大队（消防救援）"),
    ("jy", "区教育局（教育部门）"),
    ("wj", "区卫生健康局（卫健部门）"),
    ("wh", "区文化和广电旅游体育局（文化部门）"),
    ("mz", "区民政局（民政部门）"),
    ("dl", "区供电公司（电力部门）"),
    ("sl", "区水利局（水利部门）"),
    ("ly", "区林业局（林业部门）"),
    ("jj", "区公安分局交警大队（交警）"),
    ("jt", "区交通运输局（交通部门）"),
    ("aw", "区安全生产委员会办公室（区安委办）"),
)

# deputy heads named as 责任领导 in the matrix
_DEPUTIES = (
    ("L01", "副区长（分管应急、住建、市监）"),
    ("L02", "副区长（分管教育、卫健、文化）"),
    ("L03", "副区长（分管民政）"),
    ("L04", "副区长（分管交通、水利、林业、电力）"),
)

MATRIX = (
    # id, domain, departments, leader, 专委会, industries (empty = all sites), note
    (
        "gas",
        "gas",
        ("zj",),
        "L01",
        "城市运行安全专委会",
        (),
        "燃气（含餐饮场所可燃气体报警装置、燃气泄漏安全保护装置）",
    ),
    ("gas-elderly", "gas", ("mz",), "L03", "社会服务安全专委会", ("养老",), "养老等社会服务机构"),
    ("elevator", "elevator", ("sj",), "L01", "特种设备安全专委会", (), "电梯、锅炉等特种设备"),
    ("fire", "fire", ("yj", "xf"), "L01", "消防安全专委会", (), "消防；冶金工矿、商贸"),
    ("fire-school", "fire", ("jy",), "L02", "消防安全专委会", ("学校",), "教育场所"),
    ("fire-hospital", "fire", ("wj",), "L02", "消防安全专委会", ("医院",), "医疗卫生机构"),
    ("fire-culture", "fire", ("wh",), "L02", "消防安全专委会", ("文化场所",), "KTV 等人员密集文化场所"),
    ("fire-elderly", "fire", ("mz",), "L03", "消防安全专委会", ("养老",), "养老等社会服务机构"),
    ("hazchem", "hazchem", ("yj",), "L01", "危险化学品安全专委会", (), "重大危险源企业在线监测（如液氧站）"),
    ("power", "power", ("dl",), "L04", "电力安全专委会", (), "电力设施"),
    ("water", "water", ("sl",), "L04", "防汛防旱专委会", (), "水利工程和防汛防旱"),
    ("forest_fire", "forest_fire", ("ly",), "L04", "森林防灭火专委会", (), "森林防火"),
    ("traffic", "traffic", ("jj", "jt"), "L04", "道路交通安全专委会", (), "道路交通"),
)

VENDORS = (
    ("acme-gas", "安可燃气安全科技有限公司", "gasjson", "acme-gas"),
    ("liftlink", "联梯物联网科技有限公司", "elevator_json", "liftlink"),
    ("firenet", "消防网联科技有限公司", "gbt26875", "firenet"),
    ("senmlco", "森络传感技术有限公司", "senml", "senmlco"),
    ("hziot", "恒知物联有限公司", "hazmon_json", "hziot"),
)

# 电梯维保单位: each lift names the company maintaining it (its 24-hour 应急救援 duty line; every
# one has a duty mobile, so trapped passengers reach it by SMS as well as by a call where the line
# is a landline). A lift's company is chosen by its site's number, not the random generator, so
# adding them changed no other row of the sample.
MAINTAINERS = (
    {"id": "M01", "name": "杭州钱江电梯工程有限公司", "duty_name": "钱江电梯应急救援值班",
     "duty_phone": "0571-86050001", "duty_mobile": "13957300001"},
    {"id": "M02", "name": "杭州恒安电梯维修保养有限公司", "duty_name": "恒安电梯维保调度",
     "duty_phone": "13957300002", "duty_mobile": None},
    {"id": "M03", "name": "浙江临江电梯安装工程有限公司", "duty_name": "临江电梯24小时值班",
     "duty_phone": "0571-86050003", "duty_mobile": "13957300003"},
)

# industry, site_class, count per 240 sites, critical?
_MIX = (
    ("餐饮", "restaurant", 100, False),
    ("商场", "mall", 15, True),
    ("住宅物业", "residential", 40, False),
    ("医院", "hospital", 6, True),
    ("养老", "elderly_home", 12, True),
    ("工业企业", "factory", 30, False),
    ("三合一场所", "three_in_one", 30, False),
    ("学校", "school", 4, True),
    ("文化场所", "venue", 3, False),
)


#: 人员密集程度 by industry (人员密集场所: 商场、医院、学校、养老院、文化场所 — seed 002); no random draw, so
#: the rest of the district stays what it was
_DENSITY = {"商场": "高", "医院": "高", "学校": "高", "养老": "高", "文化场所": "高", "三合一场所": "中",
            "住宅物业": "中"}


def _density(industry: str, n: int) -> str:
    """A restaurant or a factory: every third one 中 (a 美食广场 stall, a 劳动密集型 workshop), else 低."""
    return _DENSITY.get(industry) or ("中" if n % 3 == 0 else "低")


@dataclass
class District:
    """Rows per table (PostgreSQL table name → list of column dicts)."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t.name: [] for t in TABLES})
    boundaries: dict[str, Any] | None = None  # boundaries.geojson (sim/sample_boundaries.py)

    def count(self, table: str) -> int:
        return len(self.tables[table])


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.phone_seq = 0
        self.seq: dict[str, int] = {}
        self.used_names: set[str] = set()

    def phone(self) -> str:
        self.phone_seq += 1
        block, n = divmod(self.phone_seq, 10000)
        return f"139{block:04d}{n:04d}"  # fake-looking 139 0000 xxxx range

    def next_id(self, prefix: str) -> str:
        self.seq[prefix] = self.seq.get(prefix, 0) + 1
        return f"{prefix}-{self.seq[prefix]:05d}"

    def person(self) -> str:
        r = self.rnd
        return r.choice(_SURNAMES) + "".join(r.choice(_GIVEN) for _ in range(r.choice((1, 2))))

    def unique(self, make: Any) -> str:
        for _ in range(50):
            name = make()
            if name not in self.used_names:
                break
        else:
            name = f"{name}（{len(self.used_names)}）"
        self.used_names.add(name)
        return name

    def day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rnd.randrange((end - start).days))


def _site_name(g: _Gen, industry: str, township: str) -> str:
    r = g.rnd
    place, sur = r.choice(_PLACES), r.choice(_SURNAMES)
    road = r.choice(_ROADS).removesuffix("路").removesuffix("街").removesuffix("巷").removesuffix("大道")
    if industry == "餐饮":
        head = r.choice((f"{sur}记", f"老{sur}家", place, f"{sur}氏"))
        tail = r.choice(
            (
                "面馆",
                "川菜馆",
                "小吃店",
                "大酒店",
                "火锅店",
                "烧烤店",
                "饺子馆",
                "酒家",
                "土菜馆",
                "快餐店",
                "小厨",
            )
        )
        return f"{head}{tail}（{road}店）"
    if industry == "商场":
        return f"{place}{r.choice(('广场', '购物中心', '天街', '商业中心'))}"
    if industry == "住宅物业":
        return f"{place}{r.choice(('苑', '花园', '公寓', '家园', '府'))}物业服务中心"
    if industry == "医院":
        return r.choice(
            (f"{township}社区卫生服务中心", f"{place}人民医院", f"{place}中医院", f"{place}妇幼保健院")
        )
    if industry == "养老":
        return f"{place}{r.choice(('颐养院', '敬老院', '康养中心', '老年公寓'))}"
    if industry == "工业企业":
        trade = r.choice(("服装", "电子", "五金", "纺织", "包装", "塑料制品", "家具", "鞋业"))
        return f"{place}{trade}有限公司"
    if industry == "三合一场所":
        return f"{sur}氏{r.choice(('五金店', '服装加工坊', '便利店', '电动车维修店', '小作坊', '布艺店'))}（{road}）"
    if industry == "学校":
        return f"{place}{r.choice(('小学', '幼儿园', '中学', '实验学校'))}"
    return f"{place}{r.choice(('KTV', '剧场', '电影院', '歌舞厅'))}"


# 安装位置 per kind of device, as a site's staff name them (texts name the device by them)
_GAS_SPOTS = ("后厨灶台上方", "后厨燃气表旁", "后厨炒灶区", "燃气表间", "厨房蒸箱旁", "地下一层燃气管道间")
_FIRE_AREAS = ("东侧走廊", "西侧走廊", "楼梯间前室", "电梯厅", "库房", "配电室", "办公区", "大厅")
_NBS_SPOTS = ("一楼店面", "一楼操作间", "二楼住人区", "阁楼仓储区", "楼梯口")


def _location(seed: int, dev_id: str, prefix: str, industry: str, lift_no: int) -> tuple[str, str]:
    """(安装位置, 注册代码) of a new device: its own generator keyed by the id, so adding these
    fields moved no other value of the sample."""
    r = random.Random(f"{seed}:loc:{dev_id}")
    if prefix == "gas":
        spot = r.choice(_GAS_SPOTS)
        return (f"美食广场{spot}" if industry == "商场" else spot), ""
    if prefix == "elv":
        where = f"{r.randint(1, 6)}号楼{r.randint(1, 3)}单元 " if industry == "住宅物业" else ""
        # 特种设备注册代码: 4 (设备类别 曳引驱动乘客电梯 3110) + region 6 + year 4 + serial 6
        code = f"3110{330106 + r.randint(0, 9):06d}{r.randint(2008, 2023)}{r.randint(1, 999999):06d}"
        return f"{where}{lift_no}号梯", code
    if prefix == "fpnl":
        return "消防控制室", ""
    if prefix in ("smk", "heat"):
        return f"{r.randint(1, 6)}F {r.choice(_FIRE_AREAS)}", ""
    if prefix == "nbs":
        return r.choice(_NBS_SPOTS), ""
    return "", ""


def _devices_for(g: _Gen, industry: str) -> list[tuple[str, str, str, str, int, bool]]:
    """(id prefix, vendor, model, domain, interval, is_panel_child) for a new site."""
    r = g.rnd
    out: list[tuple[str, str, str, str, int, bool]] = []

    def gas(n: int) -> None:
        for _ in range(n):
            if r.random() < 0.7:
                out.append(("gas", "acme-gas", "AG-GD200", "gas", 60, False))
            else:
                out.append(("gas", "hziot", "HZ-G1", "gas", 60, False))

    def lifts(n: int) -> None:
        out.extend(("elv", "liftlink", "LL-EB3", "elevator", 30, False) for _ in range(n))

    def fire_system(smoke: int, heat: int) -> None:
        out.append(("fpnl", "firenet", "FN-JB5000", "fire", 300, False))
        out.extend(("smk", "firenet", "FN-JTY-GD", "fire", 86400, True) for _ in range(smoke))
        out.extend(("heat", "firenet", "FN-JTW-ZD", "fire", 86400, True) for _ in range(heat))

    if industry == "餐饮":
        gas(r.choice((1, 1, 2, 2, 2, 3)))
    elif industry == "商场":
        gas(r.randint(1, 2))  # food court
        lifts(r.randint(4, 10))
        fire_system(r.randint(6, 12), r.randint(2, 4))
    elif industry == "住宅物业":
        lifts(r.randint(2, 8))
    elif industry == "医院":
        lifts(r.randint(3, 6))
        fire_system(r.randint(8, 14), r.randint(1, 3))
    elif industry == "养老":
        gas(1)  # kitchen
        lifts(r.randint(0, 2))
        fire_system(r.randint(4, 8), 1)
    elif industry == "工业企业":
        fire_system(r.randint(6, 12), r.randint(1, 3))  # 联动警铃和烟感报警
    elif industry == "三合一场所":
        out.extend(("nbs", "senmlco", "SC-NBS1", "fire", 3600, False) for _ in range(r.randint(1, 3)))
        if r.random() < 0.3:
            gas(1)
    elif industry == "学校":
        lifts(r.randint(0, 2))
        fire_system(r.randint(6, 10), 1)
    else:  # 文化场所
        fire_system(r.randint(5, 9), 1)
    return out


def generate(*, seed: int = DEFAULT_SEED, min_sites: int = 240, min_devices: int = 1000) -> District:
    """Build the district: at least ``min_sites`` sites and ``min_devices`` devices."""
    g = _Gen(seed)
    d = District()
    t = d.tables
    for name, name_zh, interval in DOMAINS:
        t["domains"].append({"name": name, "name_zh": name_zh, "default_interval_s": interval})
    for i, (dep_id, dep_name) in enumerate(DEPARTMENTS):
        t["departments"].append(
            {
                "id": dep_id,
                "name": dep_name,
                "duty_name": f"{dep_name.split('（')[0]}值班室",
                "duty_phone": f"0571-8603{i + 1:04d}",
                **_DEPARTMENT_CHANNELS.get(dep_id, {}),
            }
        )
    for leader_id, title in _DEPUTIES:
        t["leaders"].append({"id": leader_id, "name": g.person(), "title": title, "phone": g.phone()})
    for vid, vname, adapter, user in VENDORS:
        t["vendors"].append({"id": vid, "name": vname, "adapter": adapter, "mqtt_username": user})
    t["maintainers"].extend(dict(m) for m in MAINTAINERS)
    for rule_id, domain, deps, leader, committee, industries, note in MATRIX:
        t["matrix_rules"].append(
            {
                "id": rule_id,
                "domain": domain,
                "department_ids": list(deps),
                "leader_id": leader,
                "committee": committee,
                "industries": list(industries),
                "note": note,
            }
        )

    lon0, lon1, lat0, lat1 = _BOX
    areas: list[tuple[str, str, list[tuple[str, tuple[float, float]]]]] = []
    for ti, (tid, tname, kind, villages) in enumerate(_TOWNSHIPS):
        t["townships"].append(
            {
                "id": tid,
                "name": tname,
                "kind": kind,
                "duty_name": f"{tname}应急值班室",
                "duty_phone": f"0571-8601{ti + 1:04d}",
                **_TOWNSHIP_CHANNELS.get(tid, {}),
            }
        )
        # quarter of the box, villages spread inside it
        tx0 = lon0 + (lon1 - lon0) / 2 * (ti % 2)
        ty0 = lat0 + (lat1 - lat0) / 2 * (ti // 2)
        centres = []
        for vi, (vname, vkind) in enumerate(villages):
            vid = f"V{ti + 1:02d}{vi + 1:02d}"
            t["villages"].append(
                {
                    "id": vid,
                    "township_id": tid,
                    "name": vname,
                    "kind": vkind,
                    "grid_member": g.person(),
                    "grid_member_phone": g.phone(),
                }
            )
            cx = tx0 + (lon1 - lon0) / 2 * (0.2 + 0.3 * vi)
            cy = ty0 + (lat1 - lat0) / 2 * g.rnd.uniform(0.25, 0.75)
            centres.append((vid, (cx, cy)))
        areas.append((tid, tname, centres))

    # a fixed, shuffled industry cycle: any prefix of it has about the right mix
    cycle = [(ind, cls, crit) for ind, cls, n, crit in _MIX for _ in range(n)]
    g.rnd.shuffle(cycle)
    start = date(2019, 1, 1)
    end = date(2024, 6, 30)
    critical_by_township: dict[str, list[dict[str, Any]]] = {}
    n_sites = 0
    while n_sites < min_sites or len(t["devices"]) < min_devices:
        industry, site_class, critical = cycle[n_sites % len(cycle)]
        n_sites += 1
        tid, tname, centres = areas[g.rnd.randrange(len(areas))]
        vid, (cx, cy) = centres[g.rnd.randrange(len(centres))]
        site_id = f"S{n_sites:05d}"
        road = g.rnd.choice(_ROADS)
        site = {
            "id": site_id,
            "name": g.unique(lambda industry=industry, tname=tname: _site_name(g, industry, tname)),
            "address": f"{tname}{road}{g.rnd.randint(1, 399)}号",
            "industry": industry,
            "site_class": site_class,
            "township_id": tid,
            "village_id": vid,
            "lon": round(cx + g.rnd.uniform(-0.012, 0.012), 6),
            "lat": round(cy + g.rnd.uniform(-0.010, 0.010), 6),
            "gas_alarm_required": industry in ("餐饮", "养老"),
            "critical": critical,
            "covering_leader_id": None,
            "density_class": _density(industry, n_sites),
        }
        t["sites"].append(site)
        if critical:
            critical_by_township.setdefault(tid, []).append(site)
        t["site_contacts"].append(
            {"site_id": site_id, "name": g.person(), "role": "主要负责人", "phone": g.phone()}
        )
        if industry not in ("餐饮", "三合一场所") or g.rnd.random() < 0.4:
            role = "消防控制室" if industry in ("商场", "医院", "工业企业") else "安全管理员"
            t["site_contacts"].append(
                {"site_id": site_id, "name": g.person(), "role": role, "phone": g.phone()}
            )
        panel: str | None = None
        lift_no = 0
        for prefix, vendor, model, domain, interval, child in _devices_for(g, industry):
            dev_id = g.next_id(prefix)
            if prefix == "fpnl":
                panel = dev_id
            lift_no += prefix == "elv"
            location, reg_code = _location(seed, dev_id, prefix, industry, lift_no)
            t["devices"].append(
                {
                    "id": dev_id,
                    "vendor_id": vendor,
                    "model": model,
                    "domain": domain,
                    "site_id": site_id,
                    "expected_interval_s": interval,
                    "installed_on": g.day(start, end),
                    "parent_id": panel if child else None,
                    "active": True,
                    "location": location,
                    "reg_code": reg_code,
                    "maintainer_id": MAINTAINERS[n_sites % len(MAINTAINERS)]["id"] if domain == "elevator" else None,
                }
            )

    # 辖区边界: a Voronoi partition around the villages; sites moved inside their village
    d.boundaries = district_boundaries(t, {v: c for _t, _n, cs in areas for v, c in cs}, _BOX, seed)
    # 包保: township leaders personally cover 不放心点位, 2–3 each (DOMAIN.md)
    n_leader = 0
    for tid, tname, _kind, _v in _TOWNSHIPS:
        sites = critical_by_township.get(tid, [])
        n = max(1, math.ceil(len(sites) / 3))
        for k in range(n):
            n_leader += 1
            lid = f"L{100 + n_leader:03d}"
            title = f"{tname}{'党委书记' if k == 0 else '副镇长' if tname.endswith('镇') else '办事处副主任'}（包保）"
            t["leaders"].append({"id": lid, "name": g.person(), "title": title, "phone": g.phone()})
            for site in sites[k::n]:
                site["covering_leader_id"] = lid
    return d


def write_sample(out_dir: str | Path, district: District) -> dict[str, int]:
    """Write the district as one CSV per table (the ``hazmon registry import`` format)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def columns(spec: TableSpec) -> TableSpec:
        # as `registry export`: a district without canaries (issue 20) has no is_canary column
        rows = district.tables[spec.name]
        if spec.name == "devices" and not any(r.get("is_canary") for r in rows):
            return dataclasses.replace(spec, columns=tuple(c for c in spec.columns if c != "is_canary"))
        return spec

    if district.boundaries is not None:
        (out / "boundaries.geojson").write_text(dump_geojson(district.boundaries), encoding="utf-8")
    return {  # nor component lists (issue 18): no components.csv
        spec.stem: write_csv_table(out / f"{spec.stem}.csv", columns(spec), district.tables[spec.name])
        for spec in TABLES
        if district.tables[spec.name] or spec.name != "device_components"
    }


_MATRIX_HEADER = """\
# 责任矩阵 (responsibility matrix) of the sample district — data, not code.
#
# Modelled on DOMAIN.md (三管三必须): each domain names the industry regulator department(s), a
# responsible leader (责任领导, a deputy head) and the safety committee (专委会). A rule with
# `industries` applies only to sites of those industries (fire at 养老 → 民政 as well). Domains
# listed here without devices yet (hazchem, power, water, ...) are harmless placeholders.
#
# Import on its own with `hazmon registry import data/matrix.yaml` (it references only what it
# defines). Generated by `hazmon registry sample data/sample --matrix data/matrix.yaml`; the
# same rows are in data/sample/{domains,departments,matrix}.csv.
"""


def matrix_yaml(district: District) -> str:
    """The matrix part of the district (domains, departments, deputy heads, rules) as YAML."""
    t = district.tables
    used = {r["leader_id"] for r in t["matrix_rules"]}
    doc = {
        "version": 1,
        "domains": t["domains"],
        "departments": t["departments"],
        "leaders": [row for row in t["leaders"] if row["id"] in used],
        "matrix": [{k: v for k, v in row.items() if v not in ([], None, "")} for row in t["matrix_rules"]],
    }
    body = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, default_flow_style=None, width=120)
    return _MATRIX_HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sim.sample", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path, help="directory for the CSV files")
    parser.add_argument("--devices", type=int, default=1000, help="at least this many devices (default 1000)")
    parser.add_argument("--sites", type=int, default=240, help="at least this many sites (default 240)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--matrix", type=Path, default=None, help="also write the matrix YAML here")


def run(args: argparse.Namespace) -> int:
    district = generate(seed=args.seed, min_sites=args.sites, min_devices=args.devices)
    counts = write_sample(args.out_dir, district)
    if args.matrix:
        args.matrix.parent.mkdir(parents=True, exist_ok=True)
        args.matrix.write_text(matrix_yaml(district), encoding="utf-8")
    print(f"wrote {args.out_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
