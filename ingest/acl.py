"""Vendor MQTT credentials and ACL, generated from the registry (``hazmon mqtt-auth``).

Each vendor (``vendors.mqtt_username``) may publish only under its own prefix
``{topic_root}/{vendor}/#`` (plus its configured vendor topic patterns) and read nothing; the
bridge account reads everything under the root, through shared subscriptions too (the project
accounts come from :func:`hazmon.mqtt_auth.default_acl`, shared with the embedded dev broker).
Passwords are generated once and kept in ``credentials.json`` (mode 0600) next to the files,
so running the command again after a registry change keeps every existing vendor's password.

Files, one per listener (``per_listener_settings true``, the broker configuration of
``deploy/mosquitto/mosquitto.conf``):

* ``passwd`` — the project accounts: ``hazmon-bridge`` always, ``hazmon-sim`` / ``hazmon-admin``
  (write anywhere) only when asked for (the demo profile), never by default;
* ``passwd.vendors`` — the vendor accounts, for the vendors' listener, whose client id is the
  user name (``use_username_as_clientid``): a vendor cannot take a bridge's ``hazmon-*`` id;
* ``acl`` — both.

Every vendor id, user name and topic pattern is checked before anything is written: an ACL or
password file is line-based, so a newline, ``#``, ``+``, a space or a control character in one
of them could grant rights (a vendor name with ``\\ntopic read #`` once did). What is not an
identifier is refused with :class:`~hazmon.errors.ConfigError` (the registry refuses it on
import already); a vendor's display name is only a comment, written escaped. ``owner``
(``uid:gid`` or a user name) makes the broker's own user able to read the files: mosquitto
drops root before it opens them.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hazmon.errors import ConfigError
from hazmon.mqtt_auth import ADMIN_USER, BRIDGE_USER, SIM_USER, default_acl, password_hash
from hazmon.registry import mqtt_username as check_mqtt_username
from hazmon.registry import vendor_id as check_vendor_id
from ingest.directory import VendorInfo
from ingest.pipeline import VendorTopic

__all__ = ["AuthFiles", "vendor_acl", "acl_text", "password_text", "write_auth_files", "parse_owner"]

_TOPIC_LEVEL = re.compile(r"[A-Za-z0-9._-]+|\+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class AuthFiles:
    password_file: Path  # project accounts (the main listener)
    acl_file: Path
    credentials_file: Path
    users: dict[str, str]  # user → clear-text password (also in credentials_file)
    vendor_password_file: Path  # vendor accounts (the vendors' listener)


def _checked(vendor: VendorInfo) -> VendorInfo:
    for label, value, check in (("vendor id", vendor.id, check_vendor_id),
                                ("MQTT user name", vendor.mqtt_username, check_mqtt_username)):
        try:
            check(value)
        except ValueError as exc:
            problem = str(exc)
            if "is reserved" not in problem:
                problem = f"{label} {value!r} is not an identifier ({problem.split('(', 1)[-1]}"
            raise ConfigError(f"mqtt-auth: vendor {vendor.id!r}: {problem}; nothing written") from None
    return vendor


def _pattern(vt: VendorTopic) -> str:
    """A vendor topic pattern's subscription, level by level: names or ``+`` only."""
    sub = vt.subscription
    if not all(_TOPIC_LEVEL.fullmatch(level) for level in sub.split("/")):
        raise ConfigError(f"mqtt-auth: vendor {vt.vendor!r}: topic pattern {sub!r} is not a topic of names and '+' levels; "
                          "nothing written")
    return sub


def _comment(text: str) -> str:
    """A display name as one comment line: control characters (newlines) escaped."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def vendor_acl(vendor: VendorInfo, topic_root: str, vendor_topics: Iterable[VendorTopic] = ()) -> str:
    _checked(vendor)
    root = topic_root.strip("/")
    lines = [
        f"# vendor {vendor.id} ({_comment(vendor.name or vendor.id)}), adapter {_comment(vendor.adapter)}",
        f"user {vendor.mqtt_username}",
        f"topic write {root}/{vendor.id}/#",
    ]
    lines += [f"topic write {_pattern(vt)}" for vt in vendor_topics if vt.vendor == vendor.id]
    return "\n".join(lines) + "\n"


def acl_text(vendors: Iterable[VendorInfo], topic_root: str, vendor_topics: Iterable[VendorTopic] = (),
             project_users: Iterable[str] = (BRIDGE_USER, SIM_USER, ADMIN_USER)) -> str:
    root = topic_root.strip("/")
    if not root or not all(_TOPIC_LEVEL.fullmatch(level) and level != "+" for level in root.split("/")):
        raise ConfigError(f"mqtt-auth: topic root {topic_root!r} is not a topic of names; nothing written")
    vts = list(vendor_topics)
    parts = [default_acl(topic_root, tuple(project_users))]
    parts += [vendor_acl(v, topic_root, vts) for v in sorted(vendors, key=lambda v: v.id)]
    return "\n".join(parts)


def password_text(users: Mapping[str, str]) -> str:
    for user in users:
        if not user or ":" in user or _CONTROL.search(user) or any(c.isspace() or c in "#+" for c in user):
            raise ConfigError(f"mqtt-auth: invalid MQTT user name {user!r}")
    return "".join(f"{u}:{password_hash(p)}\n" for u, p in users.items())


def parse_owner(text: str) -> tuple[int, int]:
    """``uid:gid``, ``uid`` or a user name of this machine → ``(uid, gid)``."""
    try:
        if ":" in text:
            uid, gid = text.split(":", 1)
            return int(uid), int(gid)
        if text.isdigit():
            return int(text), int(text)
        entry = pwd.getpwnam(text)
        return entry.pw_uid, entry.pw_gid
    except (ValueError, KeyError):
        raise ConfigError(f"mqtt-auth: --owner {text!r}: expected UID:GID, UID or a user name of this machine") from None


def _write(path: Path, text: str, mode: int, owner: tuple[int, int] | None) -> None:
    """Write beside and rename: a broker (re)reading the file never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, mode)
    if owner is not None:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


def write_auth_files(
    vendors: Iterable[VendorInfo],
    out_dir: Path,
    *,
    topic_root: str = "hazmon/v1",
    vendor_topics: Iterable[VendorTopic] = (),
    bridge_password: str | None = None,
    sim_password: str | None = None,
    with_sim: bool = False,
    with_admin: bool = False,
    owner: tuple[int, int] | None = None,
) -> AuthFiles:
    """Write ``passwd``, ``passwd.vendors``, ``acl`` and ``credentials.json`` into ``out_dir``.

    ``sim_password`` (or ``with_sim``) adds ``hazmon-sim``, ``with_admin`` adds ``hazmon-admin``:
    both may write anywhere, for the demo only. ``owner``: the broker's (uid, gid); the broker's
    files are then theirs, mode 0640 (``credentials.json`` stays the caller's, 0600)."""
    vendors = [_checked(v) for v in vendors]
    if sim_password is not None and not sim_password:
        raise ConfigError("mqtt-auth: --sim-password is empty (the compose demo profile needs HAZMON_SIM_MQTT_PASSWORD)")
    if bridge_password is not None and not bridge_password:
        raise ConfigError("mqtt-auth: --bridge-password is empty (compose needs HAZMON_BRIDGE_MQTT_PASSWORD)")
    project = [BRIDGE_USER] + ([SIM_USER] if with_sim or sim_password else []) + ([ADMIN_USER] if with_admin else [])
    acl = acl_text(vendors, topic_root, vendor_topics, project)  # every check before any write
    cred_path = out_dir / "credentials.json"
    try:
        known: dict[str, str] = json.loads(cred_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    users: dict[str, str] = {}
    for user in (*project, *(v.mqtt_username for v in vendors)):
        if user in users:
            raise ConfigError(f"mqtt-auth: MQTT user {user!r} is used twice; nothing written")
        users[user] = known.get(user) or secrets.token_urlsafe(18)
    if bridge_password:
        users[BRIDGE_USER] = bridge_password
    if sim_password:
        users[SIM_USER] = sim_password
    project_text = password_text({u: users[u] for u in project})
    vendor_text = password_text({v.mqtt_username: users[v.mqtt_username] for v in vendors})
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(cred_path, json.dumps(users, indent=1, ensure_ascii=False) + "\n", 0o600, None)
    pw, vpw, acl_path = out_dir / "passwd", out_dir / "passwd.vendors", out_dir / "acl"
    _write(pw, project_text, 0o640, owner)
    _write(vpw, vendor_text, 0o640, owner)
    _write(acl_path, acl, 0o640, owner)
    return AuthFiles(pw, acl_path, cred_path, users, vpw)
