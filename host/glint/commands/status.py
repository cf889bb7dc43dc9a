"""glint status: what the field host is doing (glint.status: daemon status file + glint.db)."""

from __future__ import annotations

import json
import time

from glint.home import home_of


def register(sub) -> None:
    p = sub.add_parser("status", help="scanners seen, last sync, outbox depth, open exceptions",
                       description="Show the field host's status: the daemon's <home>/status.json when present, "
                                   "and the counts kept in <home>/glint.db.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)


def _when(t) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"


def cmd_status(args) -> int:
    home = home_of(args)
    from glint.status import collect

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
