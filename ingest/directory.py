"""The bridge's read-only view of the registry: devices and vendors, as an immutable snapshot.

The bridge looks every device up on the hot path, so the snapshot is a plain dict rebuilt as a
whole on each refresh (periodic reload; a failed reload keeps the previous snapshot). It is built
from the registry snapshot (:mod:`hazmon.registry`), keeping only what ingest needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hazmon.logs import kv

__all__ = ["DeviceInfo", "VendorInfo", "Directory", "DirectoryLoader", "load_directory", "from_registry",
           "pg_loader", "refresh_every"]

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
    devices = [
        DeviceInfo(d.id, d.vendor_id, d.site_id, d.domain, d.model, float(d.expected_interval_s), d.parent_id,
                   bool(getattr(d, "is_canary", False)))
        for d in reg.devices.values()
        if d.active
    ]
    return Directory.build(vendors, devices)


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
