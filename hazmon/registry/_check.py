"""Whole-import checks: every row, every reference, and the plan of what to write.

:func:`check` composes one small function per phase (named in its docstring) and is pure: it
takes what was read, what the database already holds and the ``replace`` flag, and returns
every error and warning plus a :class:`Plan`. The importer runs it inside the import
transaction (after locking), so the "database already holds" part is exactly what the writes
will meet.

What is an error (nothing is loaded) and what is a warning (printed, loaded anyway; an error
with ``--strict``):

* errors — a bad field; a duplicate id (also across files); a reference to a missing domain,
  township, village, site, vendor, leader, department or parent device; a village of another
  township than its site's; a device whose site is in no township; a 维保单位 named by a
  device that is not a lift (or unknown); a parent chain that loops;
  two vendors sharing an MQTT username; a domain that has devices but no matrix rule
  (三管三必须: every alarm needs a regulator department); with ``--replace``, a row kept in the
  database that still references a row this import removes.
* warnings — a site without contacts (企业主体责任: the business cannot be reached by SMS, but
  the alarm still reaches the township, grid member and departments); a 不放心点位 (critical site)
  without a covering leader (包保领导); a device whose parent is at another site; a vendor adapter
  the ingest stage does not ship; a township, matrix department or lifts' 维保单位 only voice or
  nothing reaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hazmon.errors import RowError
from hazmon.registry._boundaries import Area, check_boundaries
from hazmon.registry._check_refs import references
from hazmon.registry._checking import (
    _SPECS,
    LISTS,
    DbRowError,
    Existing,
    Key,
    Plan,
    _Checking,
    _Entry,
    _key,
    _raw_key,
    shown_key,
)
from hazmon.registry._files import RawDataset, RawRow
from hazmon.registry._reach import REACH_TABLES, reach_findings
from hazmon.registry._rows import TABLES, validate_row

__all__ = ["Plan", "Existing", "DbRowError", "check"]

def check(
    ds: RawDataset, existing: Existing, *, replace: bool = False, boundaries: list[Area] | None = None
) -> tuple[list[RowError], list[RowError], Plan]:
    """Validate everything; returns ``(errors, warnings, plan)``. The plan is only to be
    written when ``errors`` is empty.

    The phases run in this order, and the findings come out in it: each row on its own
    (fields, duplicate ids), the state after the import, references table by table, the
    matrix covering every domain in use, the business being reachable, the sites inside their
    township's boundary (``boundaries``: the stored ones, used when no file gives them), then the plan."""
    c = _Checking(ds, replace)
    _rows(c)
    _final_state(c, existing)
    references(c)
    _coverage(c)
    _reachability(c)
    check_boundaries(c, boundaries or [])  # 辖区边界: the file's, else the stored ones (``_boundaries``)
    _plan_rows(c)
    return c.errors, c.warnings, c.plan



# --------------------------------------------------------------------------- each row on its own


def _rows(c: _Checking) -> None:
    """Every row's fields, and duplicates by raw key (so a bad row still claims its id)."""
    for spec in TABLES:
        for raw in c.ds.rows[spec.name]:
            rk = _raw_key(spec.name, raw.data)
            dup = rk is not None and _claim(c, spec.name, raw, rk)
            _validate(c, spec.name, raw, rk, dup)


_WHAT = {"site_contacts": "contact phone", "device_components": "component address (§8.2 部件地址)"}


def _claim(c: _Checking, table: str, raw: RawRow, rk: Key) -> bool:
    """Record ``raw``'s key as given; whether another row gave it first (an error)."""
    c.claimed[table].add(rk)
    if table == "sites":
        c.raw_sites.setdefault(rk, raw.data)
    first = c.first_at.get((table, rk))
    if first is None:
        c.first_at[(table, rk)] = raw.loc
        return False
    problem = f"duplicate {_WHAT.get(table, 'id')} {shown_key(table, rk)!r} (first at {first})"
    c.errors.append(raw.loc.error(_SPECS[table].key[-1], problem))
    return True


def _validate(c: _Checking, table: str, raw: RawRow, rk: Key | None, dup: bool) -> None:
    """Validate one row: a good one joins ``given`` (unless a duplicate), a bad one
    ``partial`` with its fields that are not themselves bad."""
    spec = _SPECS[table]
    row, problems = validate_row(spec.model, raw.data)
    for field_name, problem in problems:
        c.errors.append(raw.loc.error(field_name, problem))
    if row is None:
        # its references are still checked, so one pass reports every problem of a row
        bad = {f.split(".", 1)[0].split("[", 1)[0] for f, _p in problems}
        c.partial[table].append((rk, _Entry(_raw_values(raw.data, bad), raw.loc)))
        return
    if dup:
        return
    values = row.model_dump()
    key = _key(table, values)
    first = c.given[table].get(key)
    if first is not None:  # equal only once normalised (phone "139 0000 0104")
        what = _WHAT["device_components"] + " " if table == "device_components" else ""
        problem = f"duplicate {what}{shown_key(table, key)!r} (first at {first.loc})"
        c.errors.append(raw.loc.error(spec.key[-1], problem))
    else:
        c.given[table][key] = _Entry(values, raw.loc)


# --------------------------------------------------------------------------- the state after the import


def _final_state(c: _Checking, existing: Existing) -> None:
    """Database rows (unless replaced) overlaid by the given rows; a site's contacts are
    replaced as a whole by the contacts given for it."""
    for spec in TABLES:
        t = spec.name
        base: dict[Key, _Entry] = {}
        if t in LISTS:  # a site's contacts, a device's components: a list replaced as a whole
            if c.replace and t in c.ds.provided:
                c.plan.replace_all.add(t)
            else:
                touched = {k[0] for k in c.claimed[t]}
                touched |= c.claimed[LISTS[t]] if t in c.ds.provided else set()
                c.plan.list_parents[t] = touched
                base = {
                    k: _Entry(dict(v), None) for k, v in existing.get(t, {}).items() if k[0] not in touched
                }
        elif t not in c.plan.replace_tables:
            base = {k: _Entry(dict(v), None) for k, v in existing.get(t, {}).items()}
        base.update(c.given[t])
        c.final[t] = base
    c.known = {t: set(c.final[t]) | c.claimed[t] for t in c.final}


# --------------------------------------------------------------------------- coverage, reachability, the plan


def _coverage(c: _Checking) -> None:
    """三管三必须: a domain with devices must have a regulator (a matrix rule)."""
    covered = {e.values.get("domain") for e in c.final["matrix_rules"].values()}
    covered |= {str(r.data.get("domain", "")).strip() for r in c.ds.rows["matrix_rules"]}  # bad: reported
    first_device: dict[Any, _Entry] = {}
    for e in c.given["devices"].values():
        first_device.setdefault(e.values.get("domain"), e)
    used = {e.values.get("domain") for e in c.final["devices"].values()}
    for name in sorted(str(d) for d in used if d in c.final["domains"] and d not in covered):
        dom = c.final["domains"][name]
        problem = f"no matrix rule covers domain {name!r} (三管三必须: its alarms would reach no department)"
        if dom.loc is not None:
            c.errors.append(dom.loc.error("name", problem))
        elif name in first_device:
            c.errors.append(first_device[name].error("devices", None, "domain", problem))
        else:
            c.errors.append(DbRowError("domains", name, "name", problem))


def _reachability(c: _Checking) -> None:
    """Warnings: a business, or a duty room only voice reaches (``_reach``); 不放心点位 without 包保."""
    contacts_of: dict[str, int] = {}  # a bad contact is reported already, yet it counts
    for ckey in set(c.final["site_contacts"]) | c.claimed["site_contacts"]:
        contacts_of[ckey[0]] = contacts_of.get(ckey[0], 0) + 1
    for key, e in c.given["sites"].items():
        if not contacts_of.get(key):
            why = "企业主体责任: the business cannot be reached by SMS"
            c.warn(e, "contacts", f"site {key!r} has no contacts ({why})")
        if e.values.get("critical") and not e.values.get("covering_leader_id"):
            problem = f"critical site {key!r} (不放心点位) has no covering leader (包保领导)"
            c.warn(e, "covering_leader_id", problem)
    for r in reach_findings({t: {k: e.values for k, e in c.final[t].items()} for t in REACH_TABLES}):
        if (e := c.final[r.table][r.key]).loc is not None:
            c.warn(e, "duty_phone", r.message())


def _plan_rows(c: _Checking) -> None:
    """The given rows to write, with a device's interval defaulting to its domain's."""
    for spec in TABLES:
        c.plan.rows[spec.name] = [e.values for e in c.given[spec.name].values()]
    for values in c.plan.rows["devices"]:
        if values.get("expected_interval_s") is None:
            domain = c.final["domains"].get(values.get("domain"))
            default = domain.values.get("default_interval_s") if domain else None
            values["expected_interval_s"] = int(default or 60)


def _raw_values(data: Mapping[str, Any], bad: set[str]) -> dict[str, Any]:
    """The fields of a row that failed validation which are not themselves bad, as plain text
    (lists split like CSV cells), for reference checks."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k in bad or v is None:
            continue
        if isinstance(v, str):
            v = v.strip()
            if not v:
                continue
            if k in ("department_ids", "industries"):
                v = [p.strip() for p in v.split(";") if p.strip()]
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        out[k] = v
    return out


