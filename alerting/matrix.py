"""Responsibility resolution (责任矩阵): who must hear about an alarm at a site.

From a :class:`hazmon.registry.Registry` snapshot (reloadable at runtime), for an alarm of a
domain at a site:

* **企业主体责任** — the site's own contacts (``business``);
* **属地** — the village/community's grid member (``grid_member``, 网格员) and the township's
  24-hour duty (``township``, 镇街值班);
* **行业监管** (三管三必须) — the duty contact of every department named by the matrix rules for the
  domain (and the site's industry, e.g. fire at a 养老院 also concerns 民政) (``department``);
* **责任领导** — each rule's responsible leader (``leader``);
* **包保责任** — the site's covering leader, if it has one (``covering_leader``);
* **维保单位** — for a lift's alarm (domain ``elevator``), the company maintaining that lift
  (``maintainer``, 电梯维保单位: its 24-hour duty line and duty mobile): a trapped passenger or a
  fault is its job on site (TSG T5002), so it is told beside the 使用单位 (the business).

Every :class:`~hazmon.contracts.Recipient` names the rule that chose it (``rule``), e.g.
``matrix:R-gas:department:zj``; that string is stored with each notification. If nothing at all
is configured for an alarm (an unknown site, a domain no rule covers, no usable channel) the
centre's duty operator (``duty_operator``) is always added: an alarm is never dropped.

Each recipient carries its channels (``Recipient.channels``, 触达渠道): ``sms`` to a mobile,
``voice`` (语音通知) to a landline, and for a township's or department's duty room its duty
mobile and group robot (``wecom`` / ``dingtalk``) — :func:`hazmon.registry.duty_channels`. The
outbox sends a row on a channel to the notifier registered under that name. A recipient no
channel reaches is not dropped: :func:`deliveries` says why, and it becomes a 未送达 row.

The functions are pure: they take the snapshot and return values; the service decides when
to reload (``hazmon.registry.load_registry``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hazmon.contracts import ContactChannel, Recipient, RecipientRole
from hazmon.registry import Registry, duty_channels

__all__ = [
    "Responsibility",
    "DUTY_RULE",
    "normalize_phone",
    "valid_phone",
    "resolve",
    "deliveries",
    "NO_CHANNEL",
    "registry_warnings",
]

DUTY_RULE = "fallback:duty_operator"
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def normalize_phone(phone: str | None) -> str | None:
    """A mainland mobile number as 11 digits (``+86``/``86``/spaces/dashes removed), or None
    if it is not one. Landlines cannot receive SMS and are treated as invalid here."""
    if not phone:
        return None
    digits = re.sub(r"[\s\-()]", "", phone)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if _MOBILE.match(digits) else None


def valid_phone(phone: str | None) -> bool:
    return normalize_phone(phone) is not None


@dataclass(frozen=True, slots=True)
class Responsibility:
    """Who is responsible for an alarm, with the township and departments for the ledger."""

    site_id: str
    township_id: str
    department_ids: tuple[str, ...]
    recipients: tuple[Recipient, ...]
    warnings: tuple[str, ...] = ()

    def for_roles(self, roles: Iterable[RecipientRole | str], *, duty_operator: Recipient | None = None) -> tuple[Recipient, ...]:
        """The recipients with one of ``roles``, one per phone (first rule wins, later rules are
        appended to its ``rule``); the duty operator when that leaves nobody reachable."""
        wanted = {RecipientRole(r) for r in roles}
        picked: list[Recipient] = []
        seen: dict[str, int] = {}
        for r in self.recipients:
            if r.role not in wanted:
                continue
            key = r.phone or (r.channels[0].address if r.channels else f"{r.role}:{r.name}:{r.unit}")
            if key in seen:
                i = seen[key]
                picked[i] = picked[i].model_copy(update={"rule": f"{picked[i].rule};{r.rule}"})
                continue
            seen[key] = len(picked)
            picked.append(r)
        if RecipientRole.DUTY_OPERATOR in wanted and duty_operator is not None and duty_operator.phone not in seen:
            picked.append(duty_operator)
        elif not any(p.phone or p.channels for p in picked) and duty_operator is not None:
            picked.append(duty_operator)
        return tuple(picked)


def resolve(registry: Registry, *, site_id: str, domain: str, device_id: str | None = None) -> Responsibility:
    """Everyone responsible for a ``domain`` alarm at ``site_id`` (see the module docstring);
    ``device_id`` names the lift whose 维保单位 is told (a lift's company is per lift).

    Every recipient is kept with its channels (``phone``: its mobile, if it has one); one that no
    channel reaches is kept too (a 未送达 row at send time), with a warning saying why.
    """
    warnings: list[str] = []
    out: list[Recipient] = []

    def add(role: RecipientRole, name: str, unit: str, phone: str | None, rule: str,
            duty: object | None = None) -> None:
        if duty is not None:  # a duty room: duty line (SMS or voice), duty mobile, group robot
            channels = tuple(ContactChannel(channel=ch, address=addr)  # type: ignore[arg-type]
                             for ch, addr in duty_channels({f: getattr(duty, f, None) for f in _DUTY_FIELDS}))
        else:
            norm = normalize_phone(phone)
            channels = (ContactChannel(channel="sms", address=norm),) if norm else ()
        mobile = next((c.address for c in channels if c.channel == "sms"), None)
        if not channels:
            warnings.append(f"{rule}: {'invalid number ' + repr(phone) if phone else 'no phone'} for "
                            f"{name or unit}: no channel reaches it")
        out.append(Recipient(role=role, name=name or unit, unit=unit, phone=mobile, rule=rule,
                             channels=channels))

    site = registry.sites.get(site_id)
    if site is None:
        return Responsibility(site_id, "", (), (), (f"site {site_id!r} is not in the registry",))
    if not site.contacts:
        warnings.append(f"site {site.id} ({site.name}) has no contacts")
    for c in site.contacts:
        add(RecipientRole.BUSINESS, c.name, site.name, c.phone, f"site:{site.id}:contact")
    village = registry.villages.get(site.village_id) if site.village_id else None
    if village is not None:
        add(RecipientRole.GRID_MEMBER, village.grid_member, village.name, village.grid_member_phone,
            f"village:{village.id}:grid_member")
    township = registry.townships.get(site.township_id)
    if township is not None:
        add(RecipientRole.TOWNSHIP, township.duty_name, township.name, township.duty_phone,
            f"township:{township.id}:duty", township)
    rules = registry.rules_for(domain, site.industry)
    if not rules:
        warnings.append(f"matrix: no rule covers domain {domain!r} (industry {site.industry!r})")
    departments: list[str] = []
    for rule in rules:
        for dep_id in rule.department_ids:
            dep = registry.departments.get(dep_id)
            if dep is None:
                warnings.append(f"matrix:{rule.id}: unknown department {dep_id!r}")
                continue
            if dep_id not in departments:
                departments.append(dep_id)
            add(RecipientRole.DEPARTMENT, dep.duty_name, dep.name, dep.duty_phone,
                f"matrix:{rule.id}:department:{dep_id}", dep)
        if rule.leader_id:
            leader = registry.leaders.get(rule.leader_id)
            if leader is not None:
                add(RecipientRole.LEADER, leader.name, leader.title, leader.phone, f"matrix:{rule.id}:leader:{leader.id}")
    if site.covering_leader_id:
        leader = registry.leaders.get(site.covering_leader_id)
        if leader is not None:
            add(RecipientRole.COVERING_LEADER, leader.name, leader.title, leader.phone,
                f"site:{site.id}:covering_leader:{leader.id}")
    company = registry.maintainer_of(device_id) if device_id and domain == "elevator" else None
    if company is not None:
        add(RecipientRole.MAINTAINER, company.duty_name or company.name, company.name, company.duty_phone,
            f"device:{device_id}:maintainer:{company.id}", company)
    elif device_id and domain == "elevator" and device_id in registry.devices:
        warnings.append(f"device {device_id}: no 维保单位 registered for this lift")
    return Responsibility(site.id, site.township_id, tuple(departments), tuple(out), tuple(warnings))


_DUTY_FIELDS = ("duty_phone", "duty_mobile", "robot", "robot_url")

#: the 未送达 reason of a recipient no channel reaches
NO_CHANNEL = "无可用触达渠道（无手机、无座机、无群机器人）"


def deliveries(r: Recipient) -> tuple[tuple[ContactChannel, ...], str]:
    """The channels a message to ``r`` goes out on, and — when there is none — the 未送达 reason.
    A recipient built with a phone only (routes.yaml's duty operator) gets an SMS to it."""
    if r.channels:
        return r.channels, ""
    if r.phone:
        return (ContactChannel(channel="sms", address=r.phone),), ""
    return (), NO_CHANNEL


def registry_warnings(registry: Registry, domains: Sequence[str] | None = None) -> list[str]:
    """Problems an operator must see at load: a domain no department covers, a site without
    contacts, invalid phone numbers, a duty room only a voice call (or nothing) reaches."""
    out: list[str] = []
    for name in sorted(set(domains or ()) | set(registry.domains)):
        if not registry.matrix.get(name):
            out.append(f"matrix: domain {name!r} has no responsible department (三管三必须)")
    for t in registry.townships.values():
        chans = {ch for ch, _a in duty_channels({f: getattr(t, f) for f in _DUTY_FIELDS})}
        if chans <= {"voice"}:
            out.append(f"township {t.id} ({t.name}): duty line {t.duty_phone!r} "
                       f"{'is reached by voice call only' if chans else 'reaches no channel'}")
    for v in registry.villages.values():
        if v.grid_member_phone and not valid_phone(v.grid_member_phone):
            out.append(f"village {v.id} ({v.name}): grid member phone {v.grid_member_phone!r} is invalid")
    for d in registry.departments.values():
        chans = {ch for ch, _a in duty_channels({f: getattr(d, f) for f in _DUTY_FIELDS})}
        if chans <= {"voice"}:
            out.append(f"department {d.id} ({d.name}): duty line {d.duty_phone!r} "
                       f"{'is reached by voice call only' if chans else 'reaches no channel'}")
    for m in registry.maintainers.values():
        chans = {ch for ch, _a in duty_channels({f: getattr(m, f, None) for f in _DUTY_FIELDS})}
        if chans <= {"voice"}:
            out.append(f"维保单位 {m.id} ({m.name}): duty line {m.duty_phone!r} "
                       f"{'is reached by voice call only' if chans else 'reaches no channel'}")
    for s in registry.sites.values():
        if not s.contacts:
            out.append(f"site {s.id} ({s.name}): no contacts (企业主体 cannot be reached)")
        for c in s.contacts:
            if not valid_phone(c.phone):
                out.append(f"site {s.id} ({s.name}): contact {c.name} phone {c.phone!r} is invalid")
    return out
