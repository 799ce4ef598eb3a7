"""The bridge's read-only view of the registry: devices and vendors, as an immutable snapshot.

The bridge looks every device up on the hot path, so the snapshot is a plain dict rebuilt as a
whole on each refresh (periodic reload; a failed reload keeps the previous snapshot). It is built
from the registry snapshot (:mod:`hazmon.registry`), keeping only what ingest needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hazmon.logs import kv

__all__ = ["DeviceInfo", "VendorInfo", "Directory", "DirectoryLoader", "load_directory", "from_registry",
           "pg_loader", "refresh_every", "unregistered_part"]

log = logging.getLogger("ingest.bridge")  # the bridge's log, where these lines always were


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: str
    vendor: str
    site_id: str
    domain: str
    model: str = ""
    expected_interval_s: float = 60.0
    parent_id: str | None = None
    #: a canary (issue 20): its readings batch names the bridge that carried it
    is_canary: bool = False
    #: a fire device's registered component addresses (部件, ``1-1/21/1-023``), None: no list
    components: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class VendorInfo:
    id: str
    adapter: str
    mqtt_username: str = ""
    name: str = ""


@dataclass(frozen=True)
class Directory:
    devices: dict[str, DeviceInfo] = field(default_factory=dict)
    vendors: dict[str, VendorInfo] = field(default_factory=dict)
    loaded_at: float = 0.0

    @classmethod
    def build(cls, vendors: Iterable[VendorInfo], devices: Iterable[DeviceInfo], now: float | None = None) -> Directory:
        return cls({d.id: d for d in devices}, {v.id: v for v in vendors}, time.time() if now is None else now)


async def load_directory(conn: Any) -> Directory:
    """Snapshot of active devices and all vendors, from the registry (:func:`hazmon.registry.load_registry`)."""
    from hazmon.registry import load_registry

    return from_registry(await load_registry(conn))


def from_registry(reg: Any) -> Directory:
    vendors = [VendorInfo(v.id, v.adapter, v.mqtt_username, v.name) for v in reg.vendors.values()]
    parts = getattr(reg, "components", {})
    devices = [
        DeviceInfo(d.id, d.vendor_id, d.site_id, d.domain, d.model, float(d.expected_interval_s), d.parent_id,
                   bool(getattr(d, "is_canary", False)), frozenset(parts[d.id]) if d.id in parts else None)
        for d in reg.devices.values()
        if d.active
    ]
    return Directory.build(vendors, devices)


_CODE_ZH = {"fire_alarm": "火警", "fault": "故障", "shielded": "屏蔽", "supervisory": "监管", "started": "启动",
            "feedback": "反馈", "delay": "延时", "reset": "复位", "config": "部件配置情况"}


def unregistered_part(dev: DeviceInfo, component: str, code: str, active: bool, zone: str,
                      detail: Mapping[str, Any]) -> str | None:
    """Why a device event names a part the registry does not list, or None (a registered part, a
    device without a component list, an event of a system or of the transmission device itself).

    Only GB/T 26875.3 component objects (types 2 部件状态 and 7 部件配置情况, whose detail has the
    部件类型) carry a part address; the record is still used — this is the dead letter beside it."""
    if dev.components is None or "comp_type" not in detail or component in dev.components:
        return None
    what = _CODE_ZH.get(code, code)
    what = what if active or code in ("reset", "config") else f"{what}恢复"
    return (
        f"部件地址 {component} 不在设备 {dev.id} 登记的 {len(dev.components)} 个部件中（GB/T 26875.3-2011 §8.2 "
        f"部件地址：系统类型 {detail.get('sys_type')} {detail.get('system', '')}、系统地址 {detail.get('sys_addr')}、"
        f"部件类型 {detail['comp_type']} {detail.get('comp_type_zh', '')}、回路 {detail.get('loop')} "
        f"点位 {detail.get('point')}）；该报文照常处理（{what}，说明：{zone or '无'}），请在注册表中补登该部件"
    )


DirectoryLoader = Callable[[], Awaitable[Directory]]


def pg_loader(dsn: str) -> DirectoryLoader:
    """A loader that reads the snapshot on a connection of its own."""
    async def load() -> Directory:
        from hazmon.db import connect

        conn = await connect(dsn)
        try:
            return await load_directory(conn)
        finally:
            await conn.close()

    return load


async def refresh_every(interval_s: float, load: DirectoryLoader, apply: Callable[[Directory], None]) -> None:
    """Reload the snapshot every ``interval_s``; a failed reload keeps the previous one."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            directory = await load()
        except Exception as exc:  # noqa: BLE001 - keep the previous snapshot
            log.warning("registry reload failed, keeping the previous snapshot %s", kv(error=str(exc)[:300]))
            continue
        apply(directory)
        log.debug("registry reloaded %s", kv(devices=len(directory.devices)))
