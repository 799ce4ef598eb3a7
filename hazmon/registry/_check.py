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
  township than its site's; a device whose site is in no township; a parent chain that loops;
  two vendors sharing an MQTT username; a domain that has devices but no matrix rule
  (三管三必须: every alarm needs a regulator department); with ``--replace``, a row kept in the
  database that still references a row this import removes.
* warnings — a site without contacts (企业主体责任: the business cannot be reached by SMS, but
  the alarm still reaches the township, grid member and departments); a 不放心点位 (critical site)
  without a covering leader (包保领导); a device whose parent is at another site; a vendor adapter
  the ingest stage does not ship; a township or matrix department only voice or nothing reaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hazmon.errors import RowError
from hazmon.registry._files import Loc, RawDataset, RawRow
from hazmon.registry._reach import REACH_TABLES, reach_findings
from hazmon.registry._rows import KNOWN_ADAPTERS, TABLES, validate_row

__all__ = ["Plan", "Existing", "DbRowError", "check"]

Key = Any  # str, or a tuple for composite keys (site_contacts)
#: What the database holds: table → key → column values (the columns the checks need).
Existing = Mapping[str, Mapping[Key, Mapping[str, Any]]]

_SPECS = {t.name: t for t in TABLES}


class DbRowError(RowError):
    """A problem with a row that is in the database, not in the files (``--replace`` only)."""

    def __init__(self, table: str, key: Key, field_name: str, problem: str) -> None:
        super().__init__(f"(database) {table}", 0, field_name, problem)
        self.table, self.key = table, key

    def __str__(self) -> str:
        return f"(database) {self.table}[{self.key}]: {self.field}: {self.problem}"


@dataclass
class Plan:
    """What to write: validated rows per table (column → value, in file order), tables whose
    absent rows are deleted, and the sites whose contact list is replaced."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    replace_tables: set[str] = field(default_factory=set)
    contact_sites: set[str] = field(default_factory=set)  # their contacts := the given ones
    replace_all_contacts: bool = False


@dataclass
class _Entry:
    values: dict[str, Any]
    loc: Loc | None  # None: a database row

    def error(self, table: str, key: Key, field_name: str, problem: str) -> RowError:
        if self.loc is None:
            return DbRowError(table, key, field_name, problem)
        return self.loc.error(field_name, problem)


def _key(table: str, values: Mapping[str, Any]) -> Key:
    cols = _SPECS[table].key
    return values.get(cols[0]) if len(cols) == 1 else tuple(values.get(c) for c in cols)


def _raw_key(table: str, data: Mapping[str, Any]) -> Key | None:
    cols = _SPECS[table].key
    parts = []
    for c in cols:
        v = data.get(c)
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        parts.append(str(v).strip())
    return parts[0] if len(parts) == 1 else tuple(parts)


def check(
    ds: RawDataset, existing: Existing, *, replace: bool = False
) -> tuple[list[RowError], list[RowError], Plan]:
    """Validate everything; returns ``(errors, warnings, plan)``. The plan is only to be
    written when ``errors`` is empty.

    The phases run in this order, and the findings come out in it: each row on its own
    (fields, duplicate ids), the state after the import, references table by table, the
    matrix covering every domain in use, the business being reachable, then the plan."""
    c = _Checking(ds, replace)
    _rows(c)
    _final_state(c, existing)
    _villages(c)
    _sites(c)
    _contacts(c)
    _vendors(c)
    _devices(c)
    _matrix(c)
    _coverage(c)
    _reachability(c)
    _plan_rows(c)
    return c.errors, c.warnings, c.plan


@dataclass
class _Checking:
    """What the phases of :func:`check` share: the input, the findings so far, and the rows
    per table — given (valid), claimed (every given key, even of a bad row), partial (bad
    rows, still reference-checked) and final (the database overlaid by the given rows)."""

    ds: RawDataset
    replace: bool
    plan: Plan = field(default_factory=Plan)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    given: dict[str, dict[Key, _Entry]] = field(default_factory=lambda: {t.name: {} for t in TABLES})
    claimed: dict[str, set[Key]] = field(default_factory=lambda: {t.name: set() for t in TABLES})
    partial: dict[str, list[tuple[Key, _Entry]]] = field(default_factory=lambda: {t.name: [] for t in TABLES})
    raw_sites: dict[Key, dict[str, Any]] = field(default_factory=dict)
    first_at: dict[tuple[str, Key], Loc] = field(default_factory=dict)
    final: dict[str, dict[Key, _Entry]] = field(default_factory=dict)
    known: dict[str, set[Key]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.errors.extend(self.ds.errors)
        self.plan.replace_tables = {t for t in self.ds.provided if self.replace}

    def ref(
        self, table: str, key: Key, entry: _Entry, col: str, target: str, label: str, suffix: str = ""
    ) -> bool:
        """Whether ``entry``'s ``col`` names a row of ``target`` after the import (or nothing);
        if not, the error is recorded."""
        value = entry.values.get(col)
        if value is None or value in self.known[target]:
            return True
        if entry.loc is None:  # a kept database row whose target this import removes
            problem = f"references {label} {value!r}, which this import removes (--replace)"
        else:
            problem = f"unknown {label} {value!r}{suffix}"
        self.errors.append(entry.error(table, key, col, problem))
        return False

    def warn(self, entry: _Entry, field_name: str, problem: str) -> None:
        """A warning about a given row (a database row is never warned about)."""
        assert entry.loc is not None
        self.warnings.append(entry.loc.error(field_name, f"warning: {problem}"))

    def relevant(self, table: str) -> list[tuple[Key, _Entry]]:
        """The rows of ``table`` whose references are checked: given rows always (bad ones
        too); database rows only when something they reference may be removed."""
        if self.plan.replace_tables or self.plan.replace_all_contacts:
            return list(self.final[table].items()) + self.partial[table]
        return list(self.given[table].items()) + self.partial[table]


# --------------------------------------------------------------------------- each row on its own


def _rows(c: _Checking) -> None:
    """Every row's fields, and duplicates by raw key (so a bad row still claims its id)."""
    for spec in TABLES:
        for raw in c.ds.rows[spec.name]:
            rk = _raw_key(spec.name, raw.data)
            dup = rk is not None and _claim(c, spec.name, raw, rk)
            _validate(c, spec.name, raw, rk, dup)


def _claim(c: _Checking, table: str, raw: RawRow, rk: Key) -> bool:
    """Record ``raw``'s key as given; whether another row gave it first (an error)."""
    c.claimed[table].add(rk)
    if table == "sites":
        c.raw_sites.setdefault(rk, raw.data)
    first = c.first_at.get((table, rk))
    if first is None:
        c.first_at[(table, rk)] = raw.loc
        return False
    what = "contact phone" if table == "site_contacts" else "id"
    shown = rk[1] if isinstance(rk, tuple) else rk
    c.errors.append(raw.loc.error(_SPECS[table].key[-1], f"duplicate {what} {shown!r} (first at {first})"))
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
        shown = key[1] if isinstance(key, tuple) else key
        c.errors.append(raw.loc.error(spec.key[-1], f"duplicate {shown!r} (first at {first.loc})"))
    else:
        c.given[table][key] = _Entry(values, raw.loc)


# --------------------------------------------------------------------------- the state after the import


def _final_state(c: _Checking, existing: Existing) -> None:
    """Database rows (unless replaced) overlaid by the given rows; a site's contacts are
    replaced as a whole by the contacts given for it."""
    for spec in TABLES:
        t = spec.name
        base: dict[Key, _Entry] = {}
        if t == "site_contacts":
            if c.replace and t in c.ds.provided:
                c.plan.replace_all_contacts = True
            else:
                touched = {k[0] for k in c.claimed[t]} | (c.claimed["sites"] if t in c.ds.provided else set())
                c.plan.contact_sites = touched
                base = {
                    k: _Entry(dict(v), None) for k, v in existing.get(t, {}).items() if k[0] not in touched
                }
        elif t not in c.plan.replace_tables:
            base = {k: _Entry(dict(v), None) for k, v in existing.get(t, {}).items()}
        base.update(c.given[t])
        c.final[t] = base
    c.known = {t: set(c.final[t]) | c.claimed[t] for t in c.final}


# --------------------------------------------------------------------------- references, table by table


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
    """A device's vendor, domain, site (in a township) and parent; then parent chains."""
    for key, e in c.relevant("devices"):
        c.ref("devices", key, e, "vendor_id", "vendors", "vendor")
        c.ref("devices", key, e, "domain", "domains", "domain", " (not in domains)")
        if c.ref("devices", key, e, "site_id", "sites", "site"):
            _device_township(c, key, e)
        _device_parent(c, key, e)
    c.errors.extend(_parent_loops(c.given["devices"], c.final["devices"]))


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
