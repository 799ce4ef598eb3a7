"""Vendor MQTT credentials and ACL, generated from the registry (``hazmon mqtt-auth``).

Each vendor (``vendors.mqtt_username``) may publish only under its own prefix
``{topic_root}/{vendor}/#`` (plus its configured vendor topic patterns) and read nothing; the
bridge account reads everything under the root, through shared subscriptions too (the project
accounts come from :func:`hazmon.stack.mosquitto.default_acl`). Passwords are generated once and
kept in ``credentials.json`` (mode 0600) next to the files, so running the command again after
a registry change keeps every existing vendor's password.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hazmon.errors import ConfigError
from hazmon.stack.mosquitto import ADMIN_USER, BRIDGE_USER, SIM_USER, default_acl, password_hash
from ingest.directory import VendorInfo
from ingest.pipeline import VendorTopic

__all__ = ["AuthFiles", "vendor_acl", "acl_text", "password_text", "write_auth_files"]


@dataclass(frozen=True)
class AuthFiles:
    password_file: Path
    acl_file: Path
    credentials_file: Path
    users: dict[str, str]  # user → clear-text password (also in credentials_file)


def vendor_acl(vendor: VendorInfo, topic_root: str, vendor_topics: Iterable[VendorTopic] = ()) -> str:
    root = topic_root.strip("/")
    lines = [
        f"# vendor {vendor.id} ({vendor.name or vendor.id}), adapter {vendor.adapter}",
        f"user {vendor.mqtt_username}",
        f"topic write {root}/{vendor.id}/#",
    ]
    lines += [f"topic write {vt.subscription}" for vt in vendor_topics if vt.vendor == vendor.id]
    return "\n".join(lines) + "\n"


def acl_text(vendors: Iterable[VendorInfo], topic_root: str, vendor_topics: Iterable[VendorTopic] = ()) -> str:
    vts = list(vendor_topics)
    parts = [default_acl(topic_root)]
    parts += [vendor_acl(v, topic_root, vts) for v in sorted(vendors, key=lambda v: v.id)]
    return "\n".join(parts)


def password_text(users: Mapping[str, str]) -> str:
    for user in users:
        if not user or ":" in user or any(c.isspace() for c in user):
            raise ConfigError(f"mqtt-auth: invalid MQTT user name {user!r}")
    return "".join(f"{u}:{password_hash(p)}\n" for u, p in users.items())


def write_auth_files(
    vendors: Iterable[VendorInfo],
    out_dir: Path,
    *,
    topic_root: str = "hazmon/v1",
    vendor_topics: Iterable[VendorTopic] = (),
    bridge_password: str | None = None,
    sim_password: str | None = None,
) -> AuthFiles:
    """Write ``passwd``, ``acl`` and ``credentials.json`` into ``out_dir``."""
    vendors = list(vendors)
    out_dir.mkdir(parents=True, exist_ok=True)
    cred_path = out_dir / "credentials.json"
    try:
        known: dict[str, str] = json.loads(cred_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    users: dict[str, str] = {}
    for user in (BRIDGE_USER, SIM_USER, ADMIN_USER, *(v.mqtt_username for v in vendors)):
        if user in users:
            raise ConfigError(f"mqtt-auth: MQTT user {user!r} is used twice")
        users[user] = known.get(user) or secrets.token_urlsafe(18)
    if bridge_password:
        users[BRIDGE_USER] = bridge_password
    if sim_password:
        users[SIM_USER] = sim_password
    cred_path.write_text(json.dumps(users, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.chmod(cred_path, 0o600)
    pw = out_dir / "passwd"
    pw.write_text(password_text(users), encoding="utf-8")
    os.chmod(pw, 0o600)
    acl = out_dir / "acl"
    acl.write_text(acl_text(vendors, topic_root, vendor_topics), encoding="utf-8")
    return AuthFiles(pw, acl, cred_path, users)
