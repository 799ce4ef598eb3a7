"""Whole-import checks: every row, every reference, and the plan of what to write.

:func:`check` is pure: it takes what was read, what the database already holds and the
``replace`` flag, and returns every error and warning plus a :class:`Plan`. The importer runs
it inside the import transaction (after locking), so the "database already holds" part is
exactly what the writes will meet.

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
  the ingest stage does not ship.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hazmon.errors import RowError
from hazmon.registry_files import Loc, RawDataset
from hazmon.registry_rows import KNOWN_ADAPTERS, TABLES, validate_row

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
    written when ``errors`` is empty."""
    errors: list[RowError] = list(ds.errors)
    warnings: list[RowError] = []
    plan = Plan()
    plan.replace_tables = {t for t in ds.provided if replace}

    # 1. each row on its own; duplicates by raw key (so a bad row still claims its id)
    given: dict[str, dict[Key, _Entry]] = {t.name: {} for t in TABLES}
    claimed: dict[str, set[Key]] = {t.name: set() for t in TABLES}  # ids of all given rows, even bad
    raw_sites: dict[Key, dict[str, Any]] = {}
    partial: dict[str, list[tuple[Key, _Entry]]] = {t.name: [] for t in TABLES}  # rows that failed validation
    first_at: dict[tuple[str, Key], Loc] = {}
    for spec in TABLES:
        for raw in ds.rows[spec.name]:
            rk = _raw_key(spec.name, raw.data)
            dup = False
            if rk is not None:
                claimed[spec.name].add(rk)
                if spec.name == "sites":
                    raw_sites.setdefault(rk, raw.data)
                if (spec.name, rk) in first_at:
                    dup = True
                    what = "contact phone" if spec.name == "site_contacts" else "id"
                    shown = rk[1] if isinstance(rk, tuple) else rk
                    errors.append(
                        raw.loc.error(
                            spec.key[-1], f"duplicate {what} {shown!r} (first at {first_at[(spec.name, rk)]})"
                        )
                    )
                else:
                    first_at[(spec.name, rk)] = raw.loc
            row, problems = validate_row(spec.model, raw.data)
            for field_name, problem in problems:
                errors.append(raw.loc.error(field_name, problem))
            if row is not None and not dup:
                values = row.model_dump()
                key = _key(spec.name, values)
                if key in given[spec.name]:  # equal only once normalised (phone "139 0000 0104")
                    shown = key[1] if isinstance(key, tuple) else key
                    errors.append(
                        raw.loc.error(
                            spec.key[-1], f"duplicate {shown!r} (first at {given[spec.name][key].loc})"
                        )
                    )
                else:
                    given[spec.name][key] = _Entry(values, raw.loc)
            elif row is None:
                # its references are still checked, so one pass reports every problem of a row
                bad = {f.split(".", 1)[0].split("[", 1)[0] for f, _p in problems}
                partial[spec.name].append((rk, _Entry(_raw_values(raw.data, bad), raw.loc)))

    # 2. the state after the import: database rows (unless replaced) overlaid by given rows
    final: dict[str, dict[Key, _Entry]] = {}
    for spec in TABLES:
        t = spec.name
        base: dict[Key, _Entry] = {}
        if t == "site_contacts":
            if replace and t in ds.provided:
                plan.replace_all_contacts = True
            else:
                touched = {k[0] for k in claimed[t]} | (claimed["sites"] if t in ds.provided else set())
                plan.contact_sites = touched
                base = {
                    k: _Entry(dict(v), None) for k, v in existing.get(t, {}).items() if k[0] not in touched
                }
        elif t not in plan.replace_tables:
            base = {k: _Entry(dict(v), None) for k, v in existing.get(t, {}).items()}
        base.update(given[t])
        final[t] = base
    known = {t: set(final[t]) | claimed[t] for t in final}

    def ref(table: str, key: Key, entry: _Entry, col: str, target: str, label: str, suffix: str = "") -> bool:
        value = entry.values.get(col)
        if value is None or value in known[target]:
            return True
        if entry.loc is None:  # a kept database row whose target this import removes
            problem = f"references {label} {value!r}, which this import removes (--replace)"
        else:
            problem = f"unknown {label} {value!r}{suffix}"
        errors.append(entry.error(table, key, col, problem))
        return False

    def relevant(table: str) -> list[tuple[Key, _Entry]]:
        # given rows always; database rows only when something they reference may be removed
        if plan.replace_tables or plan.replace_all_contacts:
            return list(final[table].items()) + partial[table]
        return list(given[table].items()) + partial[table]

    for key, e in relevant("villages"):
        ref("villages", key, e, "township_id", "townships", "township")

    for key, e in relevant("sites"):
        township_ok = ref("sites", key, e, "township_id", "townships", "township") and e.values.get(
            "township_id"
        )
        if (
            ref("sites", key, e, "village_id", "villages", "village")
            and e.values.get("village_id")
            and township_ok
        ):
            village = final["villages"].get(e.values["village_id"])
            vt = village.values.get("township_id") if village else None
            if (
                e.loc is not None
                and village
                and vt in known["townships"]
                and vt != e.values.get("township_id")
            ):
                errors.append(
                    e.error(
                        "sites",
                        key,
                        "village_id",
                        f"village {e.values['village_id']!r} belongs to township "
                        f"{village.values.get('township_id')!r}, not {e.values.get('township_id')!r}",
                    )
                )
        ref("sites", key, e, "covering_leader_id", "leaders", "leader")

    for key, e in relevant("site_contacts"):
        ref("site_contacts", key, e, "site_id", "sites", "site")

    usernames: dict[Any, Key] = {}
    for key, e in sorted(final["vendors"].items(), key=lambda kv: kv[1].loc is not None):
        user = e.values.get("mqtt_username")
        if user in usernames and usernames[user] != key:
            errors.append(
                e.error(
                    "vendors",
                    key,
                    "mqtt_username",
                    f"mqtt_username {user!r} already used by vendor {usernames[user]!r}",
                )
            )
        usernames.setdefault(user, key)
        if e.loc is not None and e.values.get("adapter") not in KNOWN_ADAPTERS:
            warnings.append(
                e.loc.error(
                    "adapter",
                    f"warning: adapter {e.values.get('adapter')!r} is not one ingest ships ({', '.join(sorted(KNOWN_ADAPTERS))})",
                )
            )

    for key, e in relevant("devices"):
        ref("devices", key, e, "vendor_id", "vendors", "vendor")
        ref("devices", key, e, "domain", "domains", "domain", " (not in domains)")
        if ref("devices", key, e, "site_id", "sites", "site"):
            site = final["sites"].get(e.values["site_id"])
            # a bad site row still tells where it claims to be
            township = (
                site.values.get("township_id")
                if site
                else raw_sites.get(e.values["site_id"], {}).get("township_id")
            )
            if isinstance(township, str):
                township = township.strip() or None
            if township not in known["townships"]:
                errors.append(
                    e.error(
                        "devices",
                        key,
                        "site_id",
                        f"site {e.values['site_id']!r} is in no township "
                        + (
                            f"(its township {township!r} is unknown)" if township else "(township_id missing)"
                        ),
                    )
                )
        parent = e.values.get("parent_id")
        if parent is not None:
            if parent == key:
                errors.append(e.error("devices", key, "parent_id", "a device cannot be its own parent"))
            elif ref("devices", key, e, "parent_id", "devices", "parent device"):
                pe = final["devices"].get(parent)
                if pe and e.loc is not None and pe.values.get("site_id") != e.values.get("site_id"):
                    warnings.append(
                        e.loc.error(
                            "parent_id",
                            f"warning: parent {parent!r} is at site {pe.values.get('site_id')!r}, not {e.values.get('site_id')!r}",
                        )
                    )
    errors.extend(_parent_loops(given["devices"], final["devices"]))

    for key, e in relevant("matrix_rules"):
        ref("matrix_rules", key, e, "domain", "domains", "domain", " (not in domains)")
        for i, dept in enumerate(e.values.get("department_ids") or []):
            if dept not in known["departments"]:
                problem = (
                    f"unknown department {dept!r}"
                    if e.loc is not None
                    else f"references department {dept!r}, which this import removes (--replace)"
                )
                errors.append(e.error("matrix_rules", key, f"department_ids[{i}]", problem))
        ref("matrix_rules", key, e, "leader_id", "leaders", "leader")

    # 3. 三管三必须: a domain with devices must have a regulator
    covered = {e.values.get("domain") for e in final["matrix_rules"].values()}
    covered |= {
        str(r.data.get("domain", "")).strip() for r in ds.rows["matrix_rules"]
    }  # bad rows: reported already
    first_device: dict[Any, _Entry] = {}
    for e in given["devices"].values():
        first_device.setdefault(e.values.get("domain"), e)
    used = {e.values.get("domain") for e in final["devices"].values()}
    for name in sorted(str(d) for d in used if d in final["domains"] and d not in covered):
        dom = final["domains"][name]
        problem = f"no matrix rule covers domain {name!r} (三管三必须: its alarms would reach no department)"
        if dom.loc is not None:
            errors.append(dom.loc.error("name", problem))
        elif name in first_device:
            errors.append(first_device[name].error("devices", None, "domain", problem))
        else:
            errors.append(DbRowError("domains", name, "name", problem))

    # 4. warnings about the business being reachable and 包保
    contacts_of: dict[str, int] = {}
    for ckey in set(final["site_contacts"]) | claimed["site_contacts"]:  # a bad contact is reported already
        contacts_of[ckey[0]] = contacts_of.get(ckey[0], 0) + 1
    for key, e in given["sites"].items():
        assert e.loc is not None
        if not contacts_of.get(key):
            warnings.append(
                e.loc.error(
                    "contacts",
                    f"warning: site {key!r} has no contacts (企业主体责任: the business cannot be reached by SMS)",
                )
            )
        if e.values.get("critical") and not e.values.get("covering_leader_id"):
            warnings.append(
                e.loc.error(
                    "covering_leader_id",
                    f"warning: critical site {key!r} (不放心点位) has no covering leader (包保领导)",
                )
            )

    # 5. the plan: given rows, with the domain's default interval filled in
    for spec in TABLES:
        plan.rows[spec.name] = [e.values for e in given[spec.name].values()]
    for values in plan.rows["devices"]:
        if values.get("expected_interval_s") is None:
            domain = final["domains"].get(values.get("domain"))
            values["expected_interval_s"] = (
                int(domain.values.get("default_interval_s") or 60) if domain else 60
            )
    return errors, warnings, plan


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
