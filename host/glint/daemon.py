"""The field daemon: watches scanners, syncs their spools, uploads the outbox, reports status.

    d = Daemon(Home(home), ports=["socket://127.0.0.1:7700"], discover=True, remote="http://hq:8750")
    d.run(stop_event)            # until stop_event is set (the CLI sets it on SIGTERM/SIGINT)
    d.run_once()                 # one pass: connect, sync every spool, upload; returns the status

Each pass (every POLL_INTERVAL_S):
* scanners: configured URLs plus USB discovery (every DISCOVERY_INTERVAL_S) are opened;
  a scanner that fails is closed and tried again at the next discovery;
* events: an EVT_SCAN_SPOOLED (a button-triggered offline scan) triggers a spool sync
  of that scanner; every scanner is also synced when it connects and every SYNC_INTERVAL_S;
* outbox: new local ledger events are collected and uploaded to the remote ledger
  (every UPLOAD_INTERVAL_S; backoff is the outbox's own);
* status: written atomically to <home>/status.json (``glint status`` reads it).

The daemon is single-threaded. It opens the ledger only while it writes (a sync, an
outbox collect) so other glint commands on the same home can take their turn as writer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from glint.errors import GlintError, LedgerError
from glint.home import Home

if TYPE_CHECKING:
    from glint.link import Scanner
    from glint.outbox import Outbox
    from glint.server.client import RemoteLedger

_log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25        # event polling and loop tick
DISCOVERY_INTERVAL_S = 5.0    # USB discovery and reopening of failed ports
SYNC_INTERVAL_S = 60.0        # periodic spool sync of every scanner (catches missed events)
UPLOAD_INTERVAL_S = 5.0       # outbox collect + upload
STATUS_INTERVAL_S = 2.0       # status file refresh
STATUS_FILE = "status.json"


@dataclass
class Watched:
    url: str
    scanner: Scanner | None = None
    device_id: str = ""
    board: str = ""
    connected: bool = False
    last_seen: float | None = None
    last_sync: float | None = None
    last_error: str | None = None
    spool_waiting: int | None = None
    sync_due: bool = True


@dataclass
class DaemonStats:
    started: float = field(default_factory=time.time)
    syncs: int = 0
    recorded: int = 0
    uploads: int = 0
    last_sync: float | None = None
    last_upload: float | None = None
    last_upload_error: str | None = None


def status_path(home: Home) -> Path:
    return home.root / STATUS_FILE


class Daemon:
    """One host's field daemon over glint home ``home`` (see the module docstring)."""

    def __init__(self, home: Home, ports: list[str] | None = None, discover: bool = False,
                 remote: str | None = None, operator: str | None = None, location: str | None = None,
                 durable: bool = True):
        from glint.checks import FirmwarePolicy
        from glint.registry import Registry

        self.home = home.ensure()
        self.ports = list(dict.fromkeys(ports or []))
        self.discover = discover
        self.remote_url = remote
        self.operator, self.location = operator, location
        self.durable = durable
        self.registry = Registry.open(home)
        self.policy = FirmwarePolicy.from_config(home.section("firmware"))
        self.watched: dict[str, Watched] = {u: Watched(u) for u in self.ports}
        self.stats = DaemonStats()
        self._remote: RemoteLedger | None = None
        self._outbox: Outbox | None = None
        self._last = {"discovery": 0.0, "upload": 0.0, "status": 0.0}
        self.state = "starting"

    # --- lifecycle
    def close(self) -> None:
        for w in self.watched.values():
            self._drop(w, None)
        self.registry.close()

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; always leaves a final status file."""
        self.state = "running"
        _log.info("daemon watching %s%s; remote %s", ", ".join(self.ports) or "no fixed ports",
                  " + USB discovery" if self.discover else "", self.remote_url or "none")
        try:
            while not stop.is_set():
                self.tick()
                stop.wait(POLL_INTERVAL_S)
        finally:
            self.state = "stopped"
            self.write_status()
            self.close()
            _log.info("daemon stopped")

    def run_once(self) -> dict:
        """One full pass: connect, sync every scanner, upload; returns the status written."""
        self.state = "once"
        self._connect(force=True)
        for w in list(self.watched.values()):
            if w.connected:
                self._sync(w)
        self._upload(force=True)
        self.state = "stopped"
        st = self.write_status()
        return st

    # --- one tick
    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last["discovery"] >= DISCOVERY_INTERVAL_S:
            self._last["discovery"] = now
            self._connect()
        for w in list(self.watched.values()):
            if not w.connected or w.scanner is None:
                continue
            try:
                events = w.scanner.poll_events()
            except GlintError as e:
                self._drop(w, e.oneline())
                continue
            from glintcore import proto

            if any(ev.type == proto.EVT_SCAN_SPOOLED for ev in events):
                _log.info("%s: button scan spooled; syncing", w.url)
                w.sync_due = True
            if w.sync_due or (w.last_sync is not None and time.time() - w.last_sync >= SYNC_INTERVAL_S):
                self._sync(w)
        if self.remote_url and now - self._last["upload"] >= UPLOAD_INTERVAL_S:
            self._last["upload"] = now
            self._upload()
        if now - self._last["status"] >= STATUS_INTERVAL_S:
            self._last["status"] = now
            self.write_status()

    def _connect(self, force: bool = False) -> None:
        from glint.link import open_scanner

        if self.discover:
            from glint.link import discover

            try:
                for found in discover():
                    self.watched.setdefault(found.port, Watched(found.port))
            except GlintError as e:
                _log.warning("discovery failed: %s", e.oneline())
        for w in self.watched.values():
            if w.connected:
                continue
            try:
                w.scanner = open_scanner(w.url)
                info = w.scanner.info(refresh=True)
                w.device_id = bytes(info.get("device_id") or b"").hex()
                w.board = str(info.get("board") or "")
                w.spool_waiting = info.get("spool")
                w.connected, w.last_seen, w.last_error, w.sync_due = True, time.time(), None, True
                _log.info("connected %s: device %s (%s), %s spooled", w.url, w.device_id, w.board, w.spool_waiting)
            except GlintError as e:
                self._drop(w, e.oneline())

    def _drop(self, w: Watched, error: str | None) -> None:
        if w.scanner is not None:
            try:
                w.scanner.close()
            except Exception:  # closing a dead port must not stop the daemon
                pass
        if error and error != w.last_error:
            _log.warning("%s: %s", w.url, error)
        w.scanner, w.connected, w.last_error = None, False, error or w.last_error

    def _open_ledger(self):
        from glint.ledger import Keys, Ledger

        return Ledger.open(self.home.ledger_target, keys=Keys.load(self.home.ledger_dir, create=True),
                           durable=self.durable)

    def _sync(self, w: Watched) -> None:
        from glint.match import has_references, open_references
        from glint.sync import SpoolSync

        try:
            led = self._open_ledger()
        except LedgerError as e:  # another writer has it: try again at the next tick
            _log.info("sync of %s postponed: %s", w.url, e.oneline())
            return
        try:
            matcher = open_references(self.home) if has_references(self.home) else None
            rep = SpoolSync(led, self.registry, matcher, self.policy, self.operator, self.location).sync(w.scanner)
        finally:
            led.close()
        w.sync_due = False
        w.last_sync = self.stats.last_sync = time.time()
        w.last_seen = time.time()
        self.stats.syncs += 1
        self.stats.recorded += rep.recorded
        if rep.error:
            self._drop(w, rep.error)
        else:
            w.spool_waiting = rep.skipped
        if rep.listed:
            _log.info("%s", rep.line())

    def _upload(self, force: bool = False) -> None:
        if not self.remote_url:
            return
        from glint.outbox import Outbox
        from glint.server.client import RemoteLedger

        if self._outbox is None or self._remote is None:
            self._outbox = Outbox(self.registry.conn)
            from glint.server.client import load_api_key

            self._remote = RemoteLedger(self.remote_url, api_key=load_api_key(self.home.root))
        outbox, remote = self._outbox, self._remote
        try:
            if self.home.database or self.home.ledger_path.exists():
                from glint.ledger import Ledger

                led = Ledger.open(self.home.ledger_target, readonly=True)
                try:
                    from glint.match import open_references

                    outbox.collect(led, open_references(self.home))
                finally:
                    led.close()
            rep = outbox.upload(remote, force=force)
        except GlintError as e:
            self.stats.last_upload_error = e.oneline()
            _log.warning("outbox: %s", e.oneline())
            return
        self.stats.uploads += rep.sent
        if rep.sent:
            self.stats.last_upload = time.time()
        self.stats.last_upload_error = rep.errors[-1] if rep.errors else None

    # --- status
    def status(self) -> dict:
        from glint.bench.exceptions import ExceptionQueue
        from glint.outbox import Outbox

        box = self._outbox or Outbox(self.registry.conn)
        return {
            "state": self.state, "pid": os.getpid(), "started": self.stats.started, "updated": time.time(),
            "remote": self.remote_url,
            "scanners": {w.url: {"device_id": w.device_id, "board": w.board, "connected": w.connected,
                                 "last_seen": w.last_seen, "last_sync": w.last_sync, "spool_waiting": w.spool_waiting,
                                 "error": w.last_error} for w in self.watched.values()},
            "syncs": self.stats.syncs, "recorded": self.stats.recorded, "last_sync": self.stats.last_sync,
            "outbox": dict(box.counts(), uploaded=self.stats.uploads, last_upload=self.stats.last_upload,
                           last_error=self.stats.last_upload_error),
            "exceptions_open": ExceptionQueue(self.registry.conn).open_count(),
        }

    def write_status(self) -> dict:
        st = self.status()
        path = status_path(self.home)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(st, indent=1))
        os.replace(tmp, path)
        return st
