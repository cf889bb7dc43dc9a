"""A throwaway PostgreSQL cluster (tests and benchmarks): initdb in a temporary directory,
``pg_ctl start`` on a unix socket in that directory (no TCP port to collide with), torn
down with ``stop()``.

    with Cluster.start(durable=False) as pg:      # durable: fsync on (benchmarks), off (tests)
        url = pg.create_database("t1")            # postgresql://postgres@/t1?host=/tmp/...

Uses Debian's server binaries (``/usr/lib/postgresql/*/bin``; ``apt-get install -y
postgresql``). initdb refuses to run as root: as root the cluster is made and run by the
``postgres`` account (Debian's package creates it) through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from glint.errors import UsageError

SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL server bin directory (with initdb and pg_ctl), or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2])
                    if p.split("/")[-2].isdigit() else 0, reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def missing_reason() -> str | None:
    """Why no throwaway cluster can start here (one line), or None when one can."""
    if find_bindir() is None:
        return "PostgreSQL server binaries not found (apt-get install -y postgresql)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return f"running as root and there is no '{SUPERUSER}' account to run initdb as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'glint[postgres]')"
    return None


class Cluster:
    """One running cluster; ``url(dbname)`` connects over its unix socket as the superuser."""

    def __init__(self, root: Path, bindir: Path, as_user: str | None):
        self.root = root
        self.data = root / "data"
        self.bindir = bindir
        self.as_user = as_user
        self._n = 0

    def _run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise UsageError(f"{Path(args[0]).name} failed (exit {r.returncode}): {' | '.join(tail)}")
        return r

    @classmethod
    def start(cls, durable: bool = False, root: str | os.PathLike | None = None,
              max_connections: int = 100) -> "Cluster":
        why = missing_reason()
        if why:
            raise UsageError(f"cannot start a PostgreSQL cluster: {why}")
        bindir = find_bindir()
        assert bindir is not None
        base = Path(root) if root else Path(tempfile.mkdtemp(prefix="glint-pg-"))
        base.mkdir(parents=True, exist_ok=True)
        as_user = SUPERUSER if os.geteuid() == 0 else None
        if as_user:
            import pwd

            pw = pwd.getpwnam(as_user)
            os.chown(base, pw.pw_uid, pw.pw_gid)
        base.chmod(0o700)
        c = cls(base, bindir, as_user)
        c._run(str(bindir / "initdb"), "-D", str(c.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
               "--no-locale", *([] if durable else ["--no-sync"]))
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{base}'",
            "max_connections": str(max_connections),
            "shared_buffers": "'128MB'",
            "fsync": "on" if durable else "off",
            "synchronous_commit": "on" if durable else "off",
            "full_page_writes": "on" if durable else "off",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "max_wal_size": "'1GB'",
            "logging_collector": "off",
        }
        with open(c.data / "postgresql.conf", "a") as f:
            f.write("\n# glint throwaway cluster\n")
            for k, v in settings.items():
                f.write(f"{k} = {v}\n")
        c._run(str(bindir / "pg_ctl"), "-D", str(c.data), "-l", str(base / "server.log"), "-w", "-t", "60",
               "start")
        c._watch(os.getpid())
        return c

    def _watch(self, pid: int) -> None:
        """A watchdog that stops the cluster and removes its directory if ``pid`` dies without
        calling stop() (a test run killed by a timeout): no server outlives its owner."""
        stop = " ".join(shlex.quote(a) for a in (["runuser", "-u", self.as_user, "--"] if self.as_user else [])
                        + [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        script = (f"while kill -0 {pid} 2>/dev/null && [ -d {shlex.quote(str(self.data))} ]; do sleep 2; done; "
                  f"if [ -d {shlex.quote(str(self.data))} ]; then {stop} >/dev/null 2>&1; "
                  f"rm -rf {shlex.quote(str(self.root))}; fi")
        subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")

    @property
    def host(self) -> str:
        return str(self.root)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.root}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        if name is None:
            self._n += 1
            name = f"glint_{os.getpid()}_{self._n}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            # PostgreSQL 15+ copies the template through the WAL by default (STRATEGY WAL_LOG): about 8x
            # slower here for a small template, and the WAL it writes fills the throwaway cluster's disk.
            # FILE_COPY is what every earlier version did.
            new = conn.info.server_version >= 150000
            conn.execute(f'CREATE DATABASE "{name}"' + (" STRATEGY FILE_COPY" if new else ""))
        return self.url(name)

    def stop(self, remove_in_background: bool = False) -> None:
        """Stop the server (waits until it is down) and remove the cluster's directory.

        ``remove_in_background``: the directory (about 300 files for each database created) is removed by
        a detached ``rm -rf`` instead of before returning. A test session's cluster holds a database per
        test: its removal was the session's whole wait after the last test (16-82 s under load)."""
        if self.data.exists():
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                          timeout=60)
            except (UsageError, subprocess.TimeoutExpired):
                pass
        if remove_in_background and shutil.which("rm"):
            # The server is down; renamed first so that the watchdog (which stops and removes a cluster whose
            # data directory outlives its owner) finds nothing left to do.
            gone = self.root.with_name(self.root.name + ".removing")
            try:
                self.root.rename(gone)
            except OSError:
                gone = self.root
            subprocess.Popen(["rm", "-rf", "--", str(gone)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")
            return
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
