#!/usr/bin/env python3
"""Time per scan on the virtual scanner: host request -> signed reply, over socket:// with pyserial.

usage: python tools/bench_vscanner.py [--scans N] [--runtime unix|node|cpython]

Starts a virtual scanner on a fresh flash directory, runs keygen, then N scans with
fresh nonces, and prints the median / p90 / min wall time per scan as the host sees it,
with the device's own split (capture, detect, sign) from the replies' t_us field.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=20)
    ap.add_argument("--runtime", default=None, choices=("unix", "node", "cpython"))
    ap.add_argument("--item-seed", type=int, default=7)
    args = ap.parse_args(argv)

    from glint.link import Timeouts, open_scanner
    from glint.vscanner import LensSpec, VirtualScanner, default_runtime
    from glintcore.proto import MSG_INFO, MSG_KEYGEN, MSG_SCAN

    runtime = args.runtime or default_runtime()
    with tempfile.TemporaryDirectory() as flash:
        t0 = time.perf_counter()
        # a pinned capture: the host does not re-render the lens between scans (no render in the timing)
        vs = VirtualScanner(flash, lens=LensSpec("item", item_seed=args.item_seed, capture_seed=1), runtime=runtime)
        with vs:
            boot = time.perf_counter() - t0
            with open_scanner(vs.url, Timeouts(request=30.0)) as c:
                info = c.request(MSG_INFO).body
                c.request(MSG_KEYGEN)
                c.request(MSG_SCAN, {"nonce": os.urandom(16)})  # warm-up
                wall, dev = [], []
                for _ in range(args.scans):
                    t = time.perf_counter()
                    body = c.request(MSG_SCAN, {"nonce": os.urandom(16)}).body
                    wall.append((time.perf_counter() - t) * 1000)
                    dev.append(body["t_us"])
    wall.sort()
    med = statistics.median
    print(f"virtual scanner: runtime={runtime} ({info['impl']}/{info['platform']}), board={info['board']}, "
          f"frame {info['geom'][0]}x{info['geom'][1]}, {args.scans} scans, boot {boot * 1000:.0f} ms")
    print(f"time per scan (host request -> signed reply): median {med(wall):.1f} ms, "
          f"p90 {wall[int(0.9 * (len(wall) - 1))]:.1f} ms, min {wall[0]:.1f} ms")
    print("device split (median): capture {:.1f} ms, detect {:.1f} ms, sign {:.1f} ms".format(
        *(med(d[i] for d in dev) / 1000 for i in range(3))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
