"""glint status: what the field host is doing (daemon status file + glint.db)."""

from __future__ import annotations

import json
import os
import time

from glint.home import Home, home_of

STALE_AFTER_S = 30.0  # a running daemon refreshes its status file far more often than this


def register(sub) -> None:
    p = sub.add_parser("status", help="scanners seen, last sync, outbox depth, open exceptions",
                       description="Show the field host's status: the daemon's <home>/status.json when present, "
                                   "and the counts kept in <home>/glint.db.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)


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
        row = db.execute("SELECT name FROM sqlite_master WHERE name='sync_runs'").fetchone()
        last = db.execute("SELECT port, device_id, finished, listed, recorded, error FROM sync_runs "
                          "ORDER BY id DESC LIMIT 1").fetchone() if row else None
        st["last_sync"] = dict(zip(["port", "device_id", "time", "listed", "recorded", "error"], last)) if last else None
    return st


def _when(t) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"


def cmd_status(args) -> int:
    home = home_of(args)
    st = collect(home)
    if args.json:
        print(json.dumps(st, indent=1))
        return 0
    d = st["daemon"]
    print(f"home       {st['home']}")
    print(f"daemon     {d['state'] + ' (pid ' + str(d['pid']) + ')' if d else 'never ran'}")
    if d:
        for url, s in d.get("scanners", {}).items():
            state = "connected" if s.get("connected") else f"offline ({s.get('error') or 'not seen'})"
            print(f"scanner    {url}  {s.get('device_id') or '?'}  {state}  last sync {_when(s.get('last_sync'))}")
    print(f"devices    {len(st['devices'])} provisioned ({sum(x['revoked'] for x in st['devices'])} revoked)")
    ls = st["last_sync"]
    print(f"last sync  {_when(ls['time']) + ' ' + ls['port'] + ': ' + str(ls['recorded']) + ' recorded' if ls else 'never'}")
    ob = st["outbox"]
    err = d.get("outbox", {}).get("last_error") if d else None
    print(f"outbox     {ob['pending']} waiting, {ob['sent']} uploaded, {ob['rejected']} refused"
          + (f"  (last error: {err})" if err else ""))
    print(f"exceptions {st['exceptions_open']} open" + ("  (glint bench --exceptions)" if st["exceptions_open"] else ""))
    return 0
