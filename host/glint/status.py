"""The field host's status as data: the daemon's status file merged with the counts kept in glint.db.

    from glint.status import collect
    st = collect(Home.open(path))     # {"home", "daemon", "outbox", "exceptions_open", "devices", "last_sync"}

``glint status`` prints it (glint.commands.status).
"""

from __future__ import annotations

import json
import os
import time

from glint.home import Home

STALE_AFTER_S = 30.0  # a running daemon refreshes its status file far more often than this


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError, TypeError):
        return False


def collect(home: Home) -> dict:
    """The status as a dict: daemon state (if any) merged with the db's counts."""
    from glint.bench.exceptions import ExceptionQueue
    from glint.daemon import status_path
    from glint.outbox import Outbox
    from glint.registry import Registry
    from glint.sync import last_sync_run

    st: dict = {"home": str(home.root), "daemon": None}
    p = status_path(home)
    if p.exists():
        try:
            d = json.loads(p.read_text())
        except ValueError:
            d = None
        if d:
            running = d.get("state") == "running" and _alive(d.get("pid"))
            stale = running and time.time() - float(d.get("updated", 0)) > STALE_AFTER_S
            d["state"] = ("stale" if stale else "running") if running else "stopped"
            st["daemon"] = d
    with Registry.open(home) as reg:
        db = reg.conn
        box = Outbox(db)
        st["outbox"] = box.counts()
        st["exceptions_open"] = ExceptionQueue(db).open_count()
        st["devices"] = [{"device_id": dv.device_id, "label": dv.label, "board": dv.board,
                          "revoked": dv.revoked} for dv in reg.devices()]
        last = last_sync_run(db)
        st["last_sync"] = ({"port": last["port"], "device_id": last["device_id"], "time": last["finished"],
                            "listed": last["listed"], "recorded": last["recorded"], "error": last["error"]}
                           if last else None)
    return st
