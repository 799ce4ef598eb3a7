"""The reference checks of an import, table by table: every id a row names must exist after the
import (villages, sites, contacts, vendors, 维保单位, devices and their parent chains, matrix
rules, a fire device's components). Run by :func:`hazmon.registry.check` after the state after the import is known."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hazmon.errors import RowError
from hazmon.registry._checking import Key, _Checking, _Entry
from hazmon.registry._rows import KNOWN_ADAPTERS

__all__ = ["references"]


def references(c: _Checking) -> None:
    """Every reference phase, in the order the findings come out."""
    _villages(c)
    _sites(c)
    _contacts(c)
    _vendors(c)
    _devices(c)
    _matrix(c)
    _components(c)



def _villages(c: _Checking) -> None:
    for key, e in c.relevant("villages"):
        c.ref("villages", key, e, "township_id", "townships", "township")


def _sites(c: _Checking) -> None:
    """A site's township, village (of that same township) and covering leader."""
    for key, e in c.relevant("sites"):
        township_ok = c.ref("sites", key, e, "township_id", "townships", "township")
        township_ok = township_ok and bool(e.values.get("township_id"))
        village_ok = c.ref("sites", key, e, "village_id", "villages", "village")
        if village_ok and e.values.get("village_id") and township_ok:
            _site_village_township(c, key, e)
        c.ref("sites", key, e, "covering_leader_id", "leaders", "leader")


def _site_village_township(c: _Checking, key: Key, e: _Entry) -> None:
    village = c.final["villages"].get(e.values["village_id"])
    vt = village.values.get("township_id") if village else None
    if e.loc is not None and village and vt in c.known["townships"] and vt != e.values.get("township_id"):
        c.errors.append(
            e.error(
                "sites",
                key,
                "village_id",
                f"village {e.values['village_id']!r} belongs to township "
                f"{village.values.get('township_id')!r}, not {e.values.get('township_id')!r}",
            )
        )


def _contacts(c: _Checking) -> None:
    for key, e in c.relevant("site_contacts"):
        c.ref("site_contacts", key, e, "site_id", "sites", "site")


def _vendors(c: _Checking) -> None:
    """One vendor per MQTT username (a database row keeps its name); adapters ingest ships."""
    usernames: dict[Any, Key] = {}
    for key, e in sorted(c.final["vendors"].items(), key=lambda kv: kv[1].loc is not None):
        user = e.values.get("mqtt_username")
        if user in usernames and usernames[user] != key:
            c.errors.append(
                e.error(
                    "vendors",
                    key,
                    "mqtt_username",
                    f"mqtt_username {user!r} already used by vendor {usernames[user]!r}",
                )
            )
        usernames.setdefault(user, key)
        if e.loc is not None and e.values.get("adapter") not in KNOWN_ADAPTERS:
            shipped = ", ".join(sorted(KNOWN_ADAPTERS))
            c.warn(e, "adapter", f"adapter {e.values.get('adapter')!r} is not one ingest ships ({shipped})")


def _devices(c: _Checking) -> None:
    """A device's vendor, domain, site (in a township), parent and a lift's 维保单位; then
    parent chains."""
    for key, e in c.relevant("devices"):
        c.ref("devices", key, e, "vendor_id", "vendors", "vendor")
        c.ref("devices", key, e, "domain", "domains", "domain", " (not in domains)")
        if c.ref("devices", key, e, "site_id", "sites", "site"):
            _device_township(c, key, e)
        _device_parent(c, key, e)
        _device_maintainer(c, key, e)
    c.errors.extend(_parent_loops(c.given["devices"], c.final["devices"]))


def _device_maintainer(c: _Checking, key: Key, e: _Entry) -> None:
    """A 维保单位 is named by lifts only (电梯维保单位), and must be in ``maintainers``."""
    if e.values.get("maintainer_id") is None:
        return
    if c.ref("devices", key, e, "maintainer_id", "maintainers", "maintenance company (维保单位)",
             " (not in maintainers)") and e.loc is not None and e.values.get("domain") not in (None, "elevator"):
        c.errors.append(e.error("devices", key, "maintainer_id",
                                f"a maintenance company (维保单位) is for lifts only, not domain "
                                f"{e.values.get('domain')!r}"))


def _device_township(c: _Checking, key: Key, e: _Entry) -> None:
    site = c.final["sites"].get(e.values["site_id"])
    # a bad site row still tells where it claims to be
    claimed = site.values if site else c.raw_sites.get(e.values["site_id"], {})
    township = claimed.get("township_id")
    if isinstance(township, str):
        township = township.strip() or None
    if township not in c.known["townships"]:
        c.errors.append(
            e.error(
                "devices",
                key,
                "site_id",
                f"site {e.values['site_id']!r} is in no township "
                + (f"(its township {township!r} is unknown)" if township else "(township_id missing)"),
            )
        )


def _device_parent(c: _Checking, key: Key, e: _Entry) -> None:
    parent = e.values.get("parent_id")
    if parent is None:
        return
    if parent == key:
        c.errors.append(e.error("devices", key, "parent_id", "a device cannot be its own parent"))
    elif c.ref("devices", key, e, "parent_id", "devices", "parent device"):
        pe = c.final["devices"].get(parent)
        if pe and e.loc is not None and pe.values.get("site_id") != e.values.get("site_id"):
            site, its = e.values.get("site_id"), pe.values.get("site_id")
            c.warn(e, "parent_id", f"parent {parent!r} is at site {its!r}, not {site!r}")


def _matrix(c: _Checking) -> None:
    """A rule's domain, departments and 责任领导."""
    for key, e in c.relevant("matrix_rules"):
        c.ref("matrix_rules", key, e, "domain", "domains", "domain", " (not in domains)")
        for i, dept in enumerate(e.values.get("department_ids") or []):
            if dept not in c.known["departments"]:
                problem = (
                    f"unknown department {dept!r}"
                    if e.loc is not None
                    else f"references department {dept!r}, which this import removes (--replace)"
                )
                c.errors.append(e.error("matrix_rules", key, f"department_ids[{i}]", problem))
        c.ref("matrix_rules", key, e, "leader_id", "leaders", "leader")



def _parent_loops(given: Mapping[Key, _Entry], final: Mapping[Key, _Entry]) -> list[RowError]:
    """Every given device whose parent chain comes back to itself."""
    out: list[RowError] = []
    safe: set[Key] = set()
    for key, e in given.items():
        seen: list[Key] = []
        node: Key | None = key
        while node is not None and node not in safe:
            if node in seen:
                if node == key:
                    chain = " → ".join(str(k) for k in [*seen, node])
                    out.append(e.error("devices", key, "parent_id", f"parent chain loops back: {chain}"))
                break
            seen.append(node)
            entry = final.get(node)
            node = entry.values.get("parent_id") if entry else None
            if node is not None and node == seen[-1]:
                break  # self-parent, reported above
        else:
            safe.update(seen)
    return out


def _components(c: _Checking) -> None:
    """A component (部件) names a known device of domain fire (a 火灾报警控制器 or 用户信息传输装置);
    a device whose vendor speaks no GB/T 26875.3 gets a warning: its frames carry no 部件地址."""
    told: set[Any] = set()
    for key, e in c.relevant("device_components"):
        if not c.ref("device_components", key, e, "device_id", "devices", "device") or e.loc is None:
            continue
        dev_id = e.values.get("device_id")
        dev = c.final["devices"].get(dev_id)
        if dev is None or dev_id in told:
            continue
        told.add(dev_id)
        domain = dev.values.get("domain")
        if domain != "fire":
            problem = f"components (部件) are for fire devices, not {dev_id!r} of domain {domain!r}"
            c.errors.append(e.error("device_components", key, "device_id", problem))
            continue
        vendor = c.final["vendors"].get(dev.values.get("vendor_id"))
        adapter = vendor.values.get("adapter") if vendor else None
        if adapter is not None and adapter != "gbt26875":
            c.warn(e, "device_id", f"device {dev_id!r} is of a vendor speaking {adapter!r}, not gbt26875: "
                   "its messages carry no GB/T 26875.3 部件地址, so its component list is not checked")
