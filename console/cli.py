"""``hazmon console`` (serve the console with uvicorn) and ``hazmon users add|list|demo``."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from hazmon.cli import run_async
from hazmon.errors import ConfigError
from hazmon.settings import Settings

__all__ = ["register"]

_ROLES = ("centre", "department", "township", "business", "vendor", "admin", "grid_member", "maintainer")


def register(sub: Any) -> None:
    con = sub.add_parser("console", help="serve the operator console (HTTP API + 中文 web page)")
    con.add_argument("--host", default=None, help="bind address (default: console.host)")
    con.add_argument("--port", type=int, default=None, help="port (default: console.port)")
    con.add_argument("--demo-accounts", action="store_true",
                     help="(re)create one demo account per role at start and print them (for hazmon demo)")
    con.set_defaults(handler=_serve)

    users = sub.add_parser("users", help="console user accounts")
    usub = users.add_subparsers(dest="users_command", metavar="ACTION")
    usub.required = True
    add = usub.add_parser("add", help="create a console user (password: --password-stdin, the setting "
                                      "new_password (HAZMON_NEW_PASSWORD), or a prompt)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=_ROLES)
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--department", default=None, help="department id (role department)")
    add.add_argument("--township", default=None, help="township id (role township)")
    add.add_argument("--site", action="append", default=[], help="site id (role business; repeat)")
    add.add_argument("--vendor", default=None, help="vendor id (role vendor)")
    add.add_argument("--village", action="append", default=[], help="village id (role grid_member; repeat)")
    add.add_argument("--maintainer", default=None, help="maintainer id (role maintainer)")
    add.add_argument("--phone", default=None,
                     help="mobile for the SMS-code sign-in (grid_member, maintainer)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    add.set_defaults(handler=_add)
    lst = usub.add_parser("list", help="list console users")
    lst.set_defaults(handler=_list)
    demo = usub.add_parser("demo", help="(re)create one demo account per role and print the passwords")
    demo.set_defaults(handler=_demo)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from console.app import build
    from hazmon.metrics import serve_metrics

    host = args.host or settings.console.host
    port = args.port or settings.console.port
    if args.demo_accounts:
        _demo(args, settings)
    print(f"hazmon console: http://{host}:{port}/  (API spec: /api/openapi.json)", flush=True)
    serve_metrics(settings.metrics_port)  # Prometheus scrapes every process, the console too
    uvicorn.run(build(settings), host=host, port=port, log_level=settings.log_level.lower(),
                proxy_headers=False, server_header=False)
    return 0


def _add(args: argparse.Namespace, settings: Settings) -> int:
    from console.scope import Role
    from console.users import NewUser, UserError, create_user
    from hazmon.db import connect

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif settings.new_password is not None:
        password = settings.new_password.get_secret_value()
    else:
        password = getpass.getpass(f"password for {args.username}: ") if sys.stdin.isatty() else ""
    if not password:
        raise ConfigError("no password: pass --password-stdin, set HAZMON_NEW_PASSWORD or run in a terminal")
    user = NewUser(args.username, password, Role(args.role), args.name, department_id=args.department,
                   township_id=args.township, site_ids=tuple(args.site), vendor_id=args.vendor,
                   village_ids=tuple(args.village), maintainer_id=args.maintainer, phone=args.phone)

    async def go() -> int:
        conn = await connect(settings.postgres.dsn)
        try:
            async with conn.transaction():
                await create_user(conn, user, actor=f"cli:{getpass.getuser()}")
        except UserError as exc:
            print(f"hazmon: error: {exc}", file=sys.stderr)
            return 2
        finally:
            await conn.close()
        print(f"user {args.username} ({args.role}) created")
        return 0

    return run_async(go())


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from hazmon.db import connect

    async def go() -> int:
        conn = await connect(settings.postgres.dsn)
        try:
            rows = await conn.fetch(
                "SELECT username, role, display_name, department_id, township_id, site_ids, vendor_id,"
                " village_ids, maintainer_id, active FROM console_users ORDER BY username"
            )
        finally:
            await conn.close()
        for r in rows:
            scope = (r["department_id"] or r["township_id"] or ",".join(r["site_ids"]) or r["vendor_id"]
                     or ",".join(r["village_ids"]) or r["maintainer_id"] or "-")
            print(f"{r['username']:<20} {r['role']:<11} {scope:<20} {'active' if r['active'] else 'inactive'}"
                  f"  {r['display_name']}")
        return 0

    return run_async(go())


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from console.users import create_demo_accounts
    from hazmon.db import connect

    async def go() -> int:
        conn = await connect(settings.postgres.dsn)
        try:
            accounts = await create_demo_accounts(conn)
        finally:
            await conn.close()
        print("demo accounts (role, username, password):", flush=True)
        for username, password, role in accounts:
            print(f"  {role:<11} {username:<16} {password}", flush=True)
        return 0

    return run_async(go())
