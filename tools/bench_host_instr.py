#!/usr/bin/env python3
"""Instructions per scan of the host's work outside the matcher, counted by callgrind.

    python tools/bench_host_instr.py [--scans 20] [--items 3] [--json]

What tools/bench_host.py times as check, ledger and cert (check_scan, the ledger's verify
event, the certificate: checkpoint, proof, build, self-check, files) plus the outcome note,
counted in instructions by ``valgrind --tool=callgrind``, which a loaded machine does not
move (wall and CPU times do): the figure to compare two revisions with, e.g. against
another checkout with ``PYTHONPATH=OTHER/host:OTHER/shared``. The match is not counted: each
scan's match outcome is given (a pass), so only the code around the matcher runs. Setup
(enrollment, probe captures, signing) and two warm-up scans run uncounted; collection is
switched on around the scans with ``callgrind_control -i on``. User-space instructions only:
the kernel's work (fsync, file creation) is not in it. Needs valgrind; takes 2-3 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = "GLINT_BENCH_INSTR_CHILD"


def _ctl(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], check=True,
                   stdout=subprocess.DEVNULL)


def child(scans: int, items: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_host as B

    from glint import sim
    from glint.checks import check_scan
    from glint.match import enroll, spots_from_descriptor
    from glint.workflows import HostSession
    from glint.workflows.scan import RES_PASS, ScanOutcome
    from glintcore import cose, p256

    host = HostSession(Path(tempfile.mkdtemp(prefix="glint-bench-instr-")), durable=True)
    d = secrets.randbelow(p256.N - 1) + 1
    did = secrets.token_bytes(8)
    host.registry.add_device(did, p256.public_key(d), "sim", "0.4.0", "bench")
    counter = 0
    seeds = list(range(1000, 1000 + items))
    for seed in seeds:
        coat = sim.make_coating(seed, "field")
        caps = []
        for k in range(3):
            counter += 1
            signed = B.make_signed(d, did, counter, sim.capture(coat, "field", seed=10 + k).image, None)
            caps.append(spots_from_descriptor(cose.decode1(signed).payload))
        host.db.add(f"bench:{seed}", enroll(caps, host.db.params, item=f"bench:{seed}"), replace=True)
        host.ledger.register_item(f"bench:{seed}", brand="bench")
        host.ledger.add_coating(f"bench:{seed}", "c1", ref=host.reference_digest(f"bench:{seed}"))
    probes = []
    for i in range(scans + 2):
        seed = seeds[i % items]
        counter += 1
        nonce = host.registry.issue_nonce(did, ttl=B.PROBE_NONCE_TTL_S)
        img = sim.capture(sim.make_coating(seed, "field"), "field", seed=100 + i).image
        probes.append((f"bench:{seed}", B.make_signed(d, did, counter, img, nonce)))
    for item, signed in probes[:2]:  # warm-up: imports, caches, the first checkpoint
        host.process(check_scan(host.registry, signed, host.policy, sync_later=True), item=item)

    def given(checked, item=None):
        out = ScanOutcome(checked, item, RES_PASS, -20.0, 30, "")
        out.timings = {"match": 0.0}
        return out

    host.match = given  # type: ignore[method-assign]
    _ctl(True)
    for item, signed in probes[2:]:
        if not host.process(check_scan(host.registry, signed, host.policy, sync_later=True), item=item).passed:
            raise SystemExit("a bench scan did not pass")
    _ctl(False)
    host.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scans", type=int, default=20, help="counted scans")
    ap.add_argument("--items", type=int, default=3, help="enrolled items the scans cycle through")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args(argv)
    if args.scans < 1 or args.items < 1:
        ap.error("--scans and --items must be at least 1")
    if os.environ.get(_CHILD):
        child(args.scans, args.items)
        return 0
    out = Path(tempfile.mkdtemp(prefix="glint-bench-instr-")) / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", sys.executable,
           __file__, "--scans", str(args.scans), "--items", str(args.items)]
    try:
        proc = subprocess.run(cmd, env=dict(os.environ, **{_CHILD: "1"}), capture_output=True, text=True)
    except FileNotFoundError:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)") from None
    m = re.search(r"Collected : ([0-9]+)", proc.stderr)
    if proc.returncode != 0 or m is None:
        raise SystemExit(f"callgrind run failed: {proc.stderr.strip().splitlines()[-1:]}")
    per = int(m.group(1)) / args.scans
    res = {"scans": args.scans, "items": args.items, "instructions_per_scan": round(per), "profile": str(out)}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"host work outside the matcher: {per / 1e6:.2f} M instructions per scan ({args.scans} scans; "
              f"callgrind profile {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
