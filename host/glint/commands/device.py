"""glint device: provision, list, revoke scanners (the device registry in <home>/glint.db).

    glint device provision [-p URL] [--label L] [--force]   key made on the device, public key recorded
    glint device list [--json] [--ports]                 provisioned devices (and USB ports found)
    glint device revoke DEVICE [--reason TEXT]           refuse its scans from now on
    glint device alerts [DEVICE]                         replay / clone / refusal alerts
"""

from __future__ import annotations

import json
import time

from glint.cli import add_port_argument
from glint.home import home_of
from glint.textsafe import clean


def register(sub):
    p = sub.add_parser("device", help="provision, list and revoke scanners")
    dsub = p.add_subparsers(dest="device_cmd", metavar="SUBCOMMAND", required=True)

    q = dsub.add_parser("provision", help="generate the device key on the scanner and record it")
    add_port_argument(q, legacy_positional=True)
    q.add_argument("--label", help="a unique name for this scanner (e.g. desk-1)")
    q.add_argument("--force", action="store_true", help="make the device replace its existing key")
    q.add_argument("--json", action="store_true", help="print one JSON object (the device record, new_key)")
    q.set_defaults(func=cmd_provision)

    q = dsub.add_parser("list", help="list provisioned scanners")
    q.add_argument("--json", action="store_true", help="print one JSON object (devices, ports)")
    q.add_argument("--ports", action="store_true", help="also list USB ports that look like scanners")
    q.set_defaults(func=cmd_list)

    q = dsub.add_parser("revoke", help="revoke a scanner: its scans are refused from now on")
    q.add_argument("device", metavar="DEVICE", help="device id (hex or unique prefix) or label")
    q.add_argument("--reason", default="revoked by operator", help="recorded with the revocation")
    q.add_argument("--json", action="store_true", help="print the revoked device record as JSON")
    q.set_defaults(func=cmd_revoke)

    q = dsub.add_parser("alerts", help="replayed scans, counter anomalies (possible clones), refusals")
    q.add_argument("device", metavar="DEVICE", nargs="?", help="only this device (id, unique prefix or label)")
    q.add_argument("--json", action="store_true", help="print the alerts as a JSON list")
    q.set_defaults(func=cmd_alerts)


def cmd_provision(args) -> int:
    from glint.address import resolve_port
    from glint.link import open_scanner
    from glint.registry import Registry
    from glint.workflows import provision

    with Registry.open(home_of(args)) as reg, open_scanner(resolve_port(args.port)) as sc:
        p = provision(reg, sc, label=args.label, force=args.force)
    d = p.device
    if args.json:
        print(json.dumps({**d.to_dict(), "new_key": p.new_key}))
        return 0
    how = "new key generated on the device" if p.new_key else "kept the key already on the device"
    print(f"provisioned {d.device_id} ({d.board}, fw {d.fw}{', ' + repr(d.label) if d.label else ''}): {how}")
    return 0


def _when(t):
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def cmd_list(args) -> int:
    from glint.registry import Registry

    with Registry.open(home_of(args)) as reg:
        devs = reg.devices()
        counts = {d.device_id: reg.scan_count(d.device_id) for d in devs}
    ports = []
    if args.ports:
        from glint.link import discover

        ports = discover()
    if args.json:
        print(json.dumps({"devices": [{**d.to_dict(), "scans": counts[d.device_id]} for d in devs],
                          "ports": [list(p) for p in ports]}))
        return 0
    if not devs:
        print("no provisioned devices (glint device provision PORT)")
    for d in devs:
        state = f"REVOKED {_when(d.revoked_at)} ({d.revoke_reason})" if d.revoked else "active"
        print(clean(f"{d.device_id}  {d.label or '-':<12} {d.board or '?':<18} fw {d.fw or '?':<8} "
                    f"scans {counts[d.device_id]:<5} counter {max(d.last_counter, 0):<6} "
                    f"since {_when(d.provisioned_at)}  {state}"))
    for port, board in ports:
        print(f"port {port}: {board}")
    return 0


def cmd_revoke(args) -> int:
    from glint.registry import Registry

    with Registry.open(home_of(args)) as reg:
        d = reg.find_device(args.device)
        d = reg.revoke(d.device_id, args.reason)
    if args.json:
        print(json.dumps(d.to_dict()))
        return 0
    print(clean(f"revoked {d.device_id}{' (' + d.label + ')' if d.label else ''}: its scans are refused from now on"))
    return 0


def cmd_alerts(args) -> int:
    from glint.registry import Registry

    with Registry.open(home_of(args)) as reg:
        did = reg.find_device(args.device).device_id if args.device else None
        alerts = reg.alerts(did)
    if args.json:
        print(json.dumps(alerts))
        return 0
    for a in alerts:
        print(clean(f"{_when(a['at'])}  {a['device_id'] or '-'}  {a['kind']:<14} {a['detail']}"))
    if not alerts:
        print("no alerts")
    return 0
