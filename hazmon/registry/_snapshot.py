"""The registry snapshot: an immutable in-memory :class:`Registry` read in one transaction.

Every stage consults it without touching the database in its hot loop: ingest (unknown
devices, vendor by MQTT username), detectors (expected reporting interval, model, site class)
and alerting (responsibility resolution: business contacts, 属地 township/village/网格员,
行业监管 departments, 责任领导, 包保领导). Rebuild it when the registry changes; a snapshot of
10,000+ devices builds in well under a second.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hazmon.logs import kv

__all__ = [
    "DomainInfo",
    "Township",
    "Village",
    "Department",
    "Leader",
    "Vendor",
    "Maintainer",
    "Contact",
    "Site",
    "Device",
    "Component",
    "MatrixRule",
    "Registry",
    "load_registry",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DomainInfo:
    """A sensor or regulatory domain (gas, elevator, fire, ...); the set is open."""

    name: str
    name_zh: str
    default_interval_s: int


@dataclass(frozen=True, slots=True)
class Township:
    """镇/街道, with its 24-hour duty contact (24小时值班)."""

    id: str
    name: str
    kind: str
    duty_name: str
    duty_phone: str  # the duty line: a mobile (SMS) or a landline (voice call)
    duty_mobile: str | None = None  # a duty mobile beside the landline (SMS)
    robot: str | None = None  # group robot channel: "wecom" | "dingtalk"
    robot_url: str | None = None
    robot_secret: str | None = None  # 钉钉 加签


@dataclass(frozen=True, slots=True)
class Village:
    """村/社区 and the grid member (网格员) who walks it."""

    id: str
    township_id: str
    name: str
    kind: str
    grid_member: str
    grid_member_phone: str


@dataclass(frozen=True, slots=True)
class Department:
    """行业监管部门 (住建, 市监, 应急, 消防救援, 教育, 卫健, 民政 ...) with its duty contact."""

    id: str
    name: str
    duty_name: str
    duty_phone: str  # a mobile (SMS) or a landline (voice call)
    duty_mobile: str | None = None
    robot: str | None = None  # "wecom" | "dingtalk"
    robot_url: str | None = None
    robot_secret: str | None = None


@dataclass(frozen=True, slots=True)
class Leader:
    """责任领导 (a deputy head named in the matrix) or 包保领导 (covers 不放心点位)."""

    id: str
    name: str
    title: str
    phone: str


@dataclass(frozen=True, slots=True)
class Vendor:
    """A hardware vendor: publishes over MQTT as ``mqtt_username`` in the ``adapter`` format."""

    id: str
    name: str
    adapter: str
    mqtt_username: str


@dataclass(frozen=True, slots=True)
class Maintainer:
    """电梯维保单位: the company maintaining a lift, with its 24-hour duty line (应急救援值班)."""

    id: str
    name: str
    duty_name: str
    duty_phone: str  # a mobile (SMS) or a landline (voice call)
    duty_mobile: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """A person of the business itself (企业主体责任), usually reached by SMS."""

    name: str
    role: str
    phone: str


@dataclass(frozen=True, slots=True)
class Site:
    """A business premises: restaurant, mall, property, hospital, 养老院, factory, 三合一 ..."""

    id: str
    name: str
    address: str
    industry: str  # 餐饮, 商场, 住宅物业, 医院, 养老, 工业企业, 三合一场所 ... (matrix rules key on it)
    site_class: str  # threshold class for detectors (restaurant, mall, hospital, ...)
    township_id: str
    village_id: str | None
    lon: float | None
    lat: float | None
    gas_alarm_required: bool
    critical: bool  # 不放心点位 / 重点场所
    covering_leader_id: str | None  # 包保领导
    contacts: tuple[Contact, ...] = ()


@dataclass(frozen=True, slots=True)
class Device:
    """A registered sensor, box or panel."""

    id: str
    vendor_id: str
    model: str
    domain: str
    site_id: str
    expected_interval_s: int  # silence longer than this (plus grace) ⇒ offline
    installed_on: date | None
    parent_id: str | None  # the panel/gateway this device hangs off
    active: bool
    location: str = ""  # 安装位置, what texts name the device by
    reg_code: str = ""  # a lift's 特种设备注册代码
    maintainer_id: str | None = None  # a lift's 维保单位
    #: a canary (监测链路探针, issue 20): published by ``hazmon canary`` through the real path;
    #: never business data, KPIs or device health
    is_canary: bool = False


@dataclass(frozen=True, slots=True)
class Component:
    """A fire panel's 部件 (GB/T 26875.3-2011 §8.2 部件地址) with its 位置说明. ``address`` is the
    part address as ingest names it: ``{系统类型}-{系统地址}/{部件类型}/{回路}-{点位:03d}``."""

    sys_type: int
    sys_addr: int
    comp_type: int
    loop: int
    point: int
    description: str = ""

    @property
    def address(self) -> str:
        return f"{self.sys_type}-{self.sys_addr}/{self.comp_type}/{self.loop}-{self.point:03d}"


@dataclass(frozen=True, slots=True)
class MatrixRule:
    """One row of the responsibility matrix (三管三必须): domain → department(s) + 责任领导.

    ``industries`` limits the rule to sites of those industries (e.g. fire at 养老 → 民政);
    empty means every site.
    """

    id: str
    domain: str
    department_ids: tuple[str, ...]
    leader_id: str | None
    committee: str  # 专委会
    note: str
    industries: tuple[str, ...] = ()

    def applies_to(self, industry: str) -> bool:
        return not self.industries or industry in self.industries


@dataclass(frozen=True, slots=True)
class Registry:
    """An immutable snapshot of the registry; every mapping is keyed by id.

    ``matrix`` maps a domain to its rules (in id order); ``children`` maps a parent device
    (fire panel, gateway) to the devices hanging off it; ``site_devices`` maps a site to its
    devices; ``vendors_by_username`` maps an MQTT username to its vendor; ``components`` maps a
    fire device that has a component list (点位表) to its components by address (a device without
    one is absent: nothing to check its frames against).
    """

    domains: Mapping[str, DomainInfo] = field(default_factory=dict)
    townships: Mapping[str, Township] = field(default_factory=dict)
    villages: Mapping[str, Village] = field(default_factory=dict)
    departments: Mapping[str, Department] = field(default_factory=dict)
    leaders: Mapping[str, Leader] = field(default_factory=dict)
    vendors: Mapping[str, Vendor] = field(default_factory=dict)
    sites: Mapping[str, Site] = field(default_factory=dict)
    devices: Mapping[str, Device] = field(default_factory=dict)
    matrix: Mapping[str, tuple[MatrixRule, ...]] = field(default_factory=dict)
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    site_devices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    vendors_by_username: Mapping[str, Vendor] = field(default_factory=dict)
    maintainers: Mapping[str, Maintainer] = field(default_factory=dict)
    components: Mapping[str, Mapping[str, Component]] = field(default_factory=dict)

    def device(self, device_id: str) -> Device | None:
        """The device, or None for an unknown device (ingest dead-letters ``unknown_device``)."""
        return self.devices.get(device_id)

    def site_of(self, device_id: str) -> Site | None:
        dev = self.devices.get(device_id)
        return self.sites.get(dev.site_id) if dev else None

    def rules_for(self, domain: str, industry: str = "") -> tuple[MatrixRule, ...]:
        """The matrix rules for an alarm of ``domain`` at a site of ``industry``: the domain's
        rules without an industry filter plus those naming this industry."""
        return tuple(r for r in self.matrix.get(domain, ()) if r.applies_to(industry))

    def maintainer_of(self, device_id: str) -> Maintainer | None:
        """A lift's 维保单位, or None (not a lift, or none registered)."""
        dev = self.devices.get(device_id)
        return self.maintainers.get(dev.maintainer_id) if dev and dev.maintainer_id else None

    def expected_interval_s(self, device_id: str) -> int | None:
        dev = self.devices.get(device_id)
        return dev.expected_interval_s if dev else None


async def load_registry(conn: Any) -> Registry:
    """Read the whole registry into a :class:`Registry` snapshot.

    ``conn`` is an asyncpg connection or pool. One query per table, run in one read-only
    repeatable-read transaction so the snapshot is consistent even while an import commits.
    """
    if hasattr(conn, "acquire") and not hasattr(conn, "transaction"):  # a Pool
        async with conn.acquire() as c:
            return await _load(c)
    return await _load(conn)


async def _load(conn: Any) -> Registry:
    if conn.is_in_transaction():  # the caller's transaction already fixes the view
        return await _read(conn)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _read(conn)


async def _read(conn: Any) -> Registry:
    domains = {
        r[0]: DomainInfo(r[0], r[1], r[2])
        for r in await conn.fetch("SELECT name, name_zh, default_interval_s FROM domains ORDER BY name")
    }
    channels = "duty_mobile, robot, robot_url, robot_secret"
    townships = {
        r[0]: Township(*r)
        for r in await conn.fetch(
            f"SELECT id, name, kind, duty_name, duty_phone, {channels} FROM townships ORDER BY id")
    }
    villages = {
        r[0]: Village(r[0], r[1], r[2], r[3], r[4], r[5])
        for r in await conn.fetch(
            "SELECT id, township_id, name, kind, grid_member, grid_member_phone FROM villages ORDER BY id"
        )
    }
    departments = {
        r[0]: Department(*r)
        for r in await conn.fetch(
            f"SELECT id, name, duty_name, duty_phone, {channels} FROM departments ORDER BY id")
    }
    leaders = {
        r[0]: Leader(r[0], r[1], r[2], r[3])
        for r in await conn.fetch("SELECT id, name, title, phone FROM leaders ORDER BY id")
    }
    vendors = {
        r[0]: Vendor(r[0], r[1], r[2], r[3])
        for r in await conn.fetch("SELECT id, name, adapter, mqtt_username FROM vendors ORDER BY id")
    }
    maintainers = {
        r[0]: Maintainer(*r)
        for r in await conn.fetch("SELECT id, name, duty_name, duty_phone, duty_mobile FROM maintainers ORDER BY id")
    }
    contacts: dict[str, list[Contact]] = {}
    for r in await conn.fetch(
        "SELECT site_id, name, role, phone FROM site_contacts ORDER BY site_id, role, phone"
    ):
        contacts.setdefault(r[0], []).append(Contact(r[1], r[2], r[3]))
    sites = {
        r[0]: Site(**dict(r), contacts=tuple(contacts.get(r[0], ())))
        for r in await conn.fetch(
            "SELECT id, name, address, industry, site_class, township_id, village_id, lon, lat,"
            " gas_alarm_required, critical, covering_leader_id FROM sites ORDER BY id"
        )
    }
    devices: dict[str, Device] = {}
    children: dict[str, list[str]] = {}
    site_devices: dict[str, list[str]] = {}
    for r in await conn.fetch(
        "SELECT id, vendor_id, model, domain, site_id, expected_interval_s, installed_on, parent_id, active,"
        " location, reg_code, maintainer_id, is_canary FROM devices ORDER BY id"
    ):
        devices[r[0]] = Device(*r)
        site_devices.setdefault(r[4], []).append(r[0])
        if r[7] is not None:
            children.setdefault(r[7], []).append(r[0])
    components: dict[str, dict[str, Component]] = {}
    for r in await conn.fetch(
        "SELECT device_id, sys_type, sys_addr, comp_type, loop, point, description FROM device_components"
        " ORDER BY 1, 2, 3, 4, 5, 6"
    ):
        part = Component(*r[1:])
        components.setdefault(r[0], {})[part.address] = part
    matrix: dict[str, list[MatrixRule]] = {}
    for r in await conn.fetch(
        "SELECT id, domain, department_ids, leader_id, committee, note, industries"
        " FROM matrix_rules ORDER BY id"
    ):
        matrix.setdefault(r[1], []).append(MatrixRule(r[0], r[1], tuple(r[2]), r[3], r[4], r[5], tuple(r[6])))
    snap = Registry(
        domains=domains,
        townships=townships,
        villages=villages,
        departments=departments,
        leaders=leaders,
        vendors=vendors,
        sites=sites,
        devices=devices,
        matrix={k: tuple(v) for k, v in matrix.items()},
        children={k: tuple(v) for k, v in children.items()},
        site_devices={k: tuple(v) for k, v in site_devices.items()},
        vendors_by_username={v.mqtt_username: v for v in vendors.values()},
        maintainers=maintainers,
        components=components,
    )
    log.debug(
        "registry loaded %s", kv(sites=len(sites), devices=len(devices), rules=sum(map(len, matrix.values())))
    )
    return snap
