"""glint fw: build, deploy, check and provision scanner firmware (docs/hardware.md).

    glint fw build --board xiao_esp32s3_sense                 compile for the board's architecture
    glint fw deploy [-p URL] --board B [--dry-run] [--verify]  copy what changed, reset, confirm the version
    glint fw version [-p URL] [--board B]                      source version / what the device runs
    glint fw freeze --board B -o DIR                           manifest.py for a custom MicroPython image
    glint fw provision [-p URL] --board B [--label L]          deploy if needed, key on the device, register
"""

from __future__ import annotations

import json

from glint.cli import add_port_argument
from glint.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("fw", help="build, deploy and check scanner firmware (mpy-cross + mpremote)")
    fsub = p.add_subparsers(dest="fw_cmd", metavar="SUBCOMMAND", required=True)

    q = fsub.add_parser("build", help="compile the firmware for a board (cached)")
    _board_args(q, required=True)
    q.add_argument("--out", default=None, help="build folder (default build/fw/<board>)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_build)

    q = fsub.add_parser("deploy", help="install the firmware on a board over mpremote")
    add_port_argument(q, legacy_positional=True)
    _board_args(q)
    _deploy_args(q)
    q.add_argument("--dry-run", action="store_true", help="print the mpremote commands, touch nothing")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_deploy)

    q = fsub.add_parser("version", help="the firmware version of this checkout and of a device")
    add_port_argument(q, legacy_positional=True, default_help="none: only this checkout's version; "
                      "-p auto asks the one USB scanner found")
    q.add_argument("--board", help="board id for the build id (default: every board, or the device's)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_version)

    q = fsub.add_parser("freeze", help="write a MicroPython manifest.py freezing glintcore and glintfw")
    q.add_argument("--board", required=True, help="board id (boards/<id>), a real board's port")
    q.add_argument("-o", "--out", required=True, help="output file or folder")
    q.add_argument("--json", action="store_true", help="print one JSON object (manifest)")
    q.set_defaults(func=cmd_freeze)

    q = fsub.add_parser("provision", help="deploy if needed, generate the key on the device, register it")
    add_port_argument(q, legacy_positional=True)
    _board_args(q)
    _deploy_args(q)
    q.add_argument("--label", help="a unique name for this scanner")
    q.add_argument("--rekey", action="store_true", help="make the device replace an existing key")
    q.add_argument("--json", action="store_true", help="print one JSON object (deploy summary, device record)")
    q.set_defaults(func=cmd_provision)


def _board_args(q, required: bool = False) -> None:
    q.add_argument("--board", required=required,
                   help="board id (boards/<id>)" + ("" if required else "; default: asked from the running firmware"))
    q.add_argument("--mode", choices=("mpy", "py", "frozen"), default="mpy",
                   help="mpy: precompiled (default); py: sources; frozen: only board files (image has the rest)")


def _deploy_args(q) -> None:
    q.add_argument("--force", action="store_true", help="copy every file whatever the device has")
    q.add_argument("--verify", action="store_true", help="hash the files on the device instead of trusting its manifest")
    q.add_argument("--no-reset", action="store_true", help="leave the board at the REPL (no reset, no version check)")
    q.add_argument("--selftest", action="store_true", help="run the device self-test after the reset")


def _board_for(args) -> str:
    """--board, else what the running firmware reports, else the USB VID/PID table."""
    if args.board:
        return args.board
    from glint.errors import GlintError

    try:
        from glint.fw.deploy import wait_for_firmware

        info = wait_for_firmware(args.port, timeout=3.0)
        if isinstance(info.get("board"), str):
            return info["board"]
    except GlintError:
        pass
    try:
        from glint.link import discover

        for found in discover():
            port, board = found[0], found[1]
            if port == args.port and board:
                return board
    except GlintError:
        pass
    raise UsageError(f"cannot tell which board is on {args.port}", hint="give --board (see docs/boards.md)")


def cmd_build(args) -> int:
    from glint.fw.build import build

    b = build(args.board, args.mode, args.out)
    if args.json:
        print(json.dumps({**b.manifest(), "bytes": b.total_bytes, "compiled": b.compiled, "skipped": b.skipped,
                          "out": str(b.out_dir)}))
        return 0
    for a in b.artifacts:
        print(f"{a.dest:34s} {a.size:7d}  {a.sha256[:12]}{'  native' if a.native else ''}")
    for s in b.skipped:
        print(f"skipped {s}")
    print(f"{b.board_id} fw {b.version} build {b.build_id}: {len(b.artifacts)} files, {b.total_bytes} bytes, "
          f"{b.compiled} compiled ({b.arch}) -> {b.out_dir}")
    return 0


def _deploy(args, board: str, quiet: bool = False):
    from glint.fw.deploy import deploy

    dry = getattr(args, "dry_run", False)
    echo = print if dry else None
    # A provisioned scanner is locked: the home's maintainer key unlocks it for the REPL mpremote needs,
    # or the deploy stops in one line (glint.unlock).
    return deploy(args.port, board, args.mode, force=args.force, verify=args.verify, dry_run=dry,
                  reset="none" if args.no_reset else "hard", selftest=args.selftest, echo=echo,
                  home=getattr(args, "home", None))


def cmd_deploy(args) -> int:
    from glint.address import resolve_port
    from glint.fw.deploy import selftest_verdict

    args.port = resolve_port(args.port)
    board = _board_for(args)
    r = _deploy(args, board)
    ok = True
    lines: list[str] = []
    if r.selftest is not None:
        ok, lines = selftest_verdict(r.selftest)
    if args.json:
        print(json.dumps({"board": board, "fw": r.build.version, "build": r.build.build_id, "dry_run": r.dry_run,
                          "copied": [a.dest for a in r.plan.copy] if r.plan and not r.dry_run else [],
                          "removed": r.plan.remove if r.plan and not r.dry_run else [],
                          "running": r.info and {"fw": r.info.get("fw"), "board": r.info.get("board")},
                          "selftest": r.selftest, "selftest_ok": ok, "commands": r.commands,
                          "seconds": {k: round(v, 3) for k, v in r.seconds.items()}}, default=_jsonable))
        return 0 if ok else 1
    if not r.dry_run:
        for a in r.plan.copy:
            print(f"copied  {a.dest} ({a.size} bytes)")
        for p in r.plan.remove:
            print(f"removed {p}")
    print(r.summary() + (f" in {r.seconds.get('total', 0):.1f} s" if not r.dry_run else ""))
    if r.info:
        print(f"running: {r.info.get('board')} fw {r.info.get('fw')} (device {_hex(r.info.get('device_id'))})")
    if r.selftest is not None:
        print("self-test " + ("passed" if ok else "FAILED"))
        print("\n".join(lines))
    return 0 if ok else 1


def cmd_version(args) -> int:
    from glint.fw.build import build, list_boards, source_version

    out: dict = {"source": source_version()}
    running = None
    if args.port:
        from glint.address import resolve_port

        args.port = resolve_port(args.port)
        from glint.fw.deploy import wait_for_firmware

        running = wait_for_firmware(args.port, timeout=5.0)
        out["device"] = {"board": running.get("board"), "fw": running.get("fw"),
                         "device_id": _hex(running.get("device_id")), "proto": running.get("proto")}
    boards = [args.board] if args.board else ([running["board"]] if running and running.get("board") else list_boards())
    out["builds"] = {b: build(b).build_id for b in boards}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"source: fw {out['source']}")
    for b, bid in out["builds"].items():
        print(f"  {b:20s} build {bid}")
    if running:
        d = out["device"]
        same = d["fw"] == out["source"]
        print(f"device on {args.port}: {d['board']} fw {d['fw']} ({'same as' if same else 'DIFFERS from'} this checkout)")
    return 0


def cmd_freeze(args) -> int:
    from glint.fw.freeze import write_manifest

    path = write_manifest(args.board, args.out)
    if args.json:
        print(json.dumps({"manifest": str(path), "board": args.board}))
        return 0
    print(f"wrote {path}")
    print(f"build a custom image with it (docs/hardware.md, 'Custom firmware image'), then: "
          f"glint fw deploy PORT --board {args.board} --mode frozen")
    return 0


def cmd_provision(args) -> int:
    from glint.address import resolve_port
    from glint.fw.deploy import selftest_verdict
    from glint.home import home_of
    from glint.link import open_scanner
    from glint.registry import Registry
    from glint.workflows import provision

    home = home_of(args)  # before touching the device: a missing home is refused first
    args.port = resolve_port(args.port)
    board = _board_for(args)
    args.dry_run = False
    r = _deploy(args, board)
    say = (lambda *_: None) if args.json else print
    say(r.summary())
    if r.selftest is not None:
        ok, lines = selftest_verdict(r.selftest)
        say("self-test " + ("passed" if ok else "FAILED") + "\n" + "\n".join(lines))
        if not ok:
            if args.json:
                print(json.dumps({"deploy": r.summary(), "selftest_ok": False, "selftest": lines}))
            return 1
    with Registry.open(home) as reg, open_scanner(args.port) as sc:
        p = provision(reg, sc, label=args.label, force=args.rekey)
    d = p.device
    if args.json:
        print(json.dumps({"deploy": r.summary(), "device": d.to_dict(), "new_key": p.new_key}))
        return 0
    how = "new key generated on the device" if p.new_key else "kept the key already on the device"
    print(f"provisioned {d.device_id} ({d.board}, fw {d.fw}{', ' + repr(d.label) if d.label else ''}): {how}")
    return 0


def _hex(v) -> str:
    return bytes(v).hex() if isinstance(v, (bytes, bytearray)) else str(v)


def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    raise TypeError(type(v).__name__)
