#!/usr/bin/env python3
"""identify at a large size, quickly: a database of K copies of a smaller synthetic one.

    python tools/bench_identify_replica.py --src KEEP/n100000 --copies 10 --out DIR [--old REV]

``--src`` is a database kept by ``tools/bench_match.py --keep KEEP`` (with its fields.pkl). DIR gets
K x its rows (row r + k x n holds reference r again, ids ``item-i-copyk``), the index entries
computed once from the records and replicated with the row offsets, written with the bucket count
of the full size: the index has the size, the bucket load and the hits per lookup of a database of
K x n references (a real one's references differ; here every genuine probe's item has K - 1 twins,
which tie with it, and the first row wins the tie). Then genuine probes (fresh observations of
the kept fields, harsh-profile statistics) and unknown ones (fields never enrolled) are identified,
CPU time per call, with ``--old REV`` alternated probe by probe with REV's glint.match.identify.
DIR is reused when it holds a finished index.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import glint.match.identify  # noqa: F401 - the module (glint.match.identify is also the function)
from glint.match import Database, synth
from glint.match.database import entries_of_records
from glint.match.index import ROW_SHIFT, bits_for

new = sys.modules["glint.match.identify"]


def build(src: str, out: str, copies: int) -> None:
    db = Database(src)
    n = len(db.records)
    bits = bits_for(n * copies * db.params.index_codes)
    bs, es = [], []
    for s in range(0, n, 10_000):
        rows = np.arange(s, min(n, s + 10_000))
        b, e = entries_of_records(np.asarray(db.records[rows]), rows, db.params, db.width, db.height, bits)
        bs.append(b.astype(np.uint32))
        es.append(e)
    b, e = np.concatenate(bs), np.concatenate(es)
    del bs, es
    buckets = np.concatenate([b] * copies)
    entries = np.concatenate([e + np.uint64((k * n) << ROW_SHIFT) for k in range(copies)])
    del b, e
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(src, "meta.json"), out)
    shutil.copy(os.path.join(src, "fields.pkl"), out)
    with open(os.path.join(src, "refs.bin"), "rb") as f:
        refs = f.read()
    with open(os.path.join(out, "refs.bin"), "wb") as f:
        for _ in range(copies):
            f.write(refs)
    with open(os.path.join(out, "alive.u8"), "wb") as f:
        f.write(b"\x01" * (n * copies))
    ids = open(os.path.join(src, "items.txt")).read().split()
    with open(os.path.join(out, "items.txt"), "w") as f:
        f.write("".join(f"{i}\n" for i in ids))
        f.write("".join(f"{i}-copy{k}\n" for k in range(1, copies) for i in ids))
    Database(out).write_bulk_index(buckets, entries, bits)


def old_module(rev: str):
    src = subprocess.run(["git", "show", f"{rev}:host/glint/match/identify.py"], check=True, capture_output=True,
                         text=True).stdout
    d = tempfile.mkdtemp()
    path = os.path.join(d, "old_identify.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("old_identify", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_identify"] = mod
    spec.loader.exec_module(mod)
    return mod


def measure(out: str, genuine: int, unknown: int, old=None, seed: int = 7) -> dict:
    db = Database(out)
    fields = pickle.load(open(os.path.join(out, "fields.pkl"), "rb"))
    rng = np.random.default_rng(seed)
    keys = sorted(fields)[:genuine]
    probes = [(f"item-{i}", synth.observe(fields[i], rng, **synth.SIM_HARSH)) for i in keys]
    irng = np.random.default_rng([1, 2])
    probes += [(None, synth.observe(synth.make_field(irng), irng, **synth.SIM_HARSH)) for _ in range(unknown)]
    mods = [("new", new)] + ([("old", old)] if old else [])
    for _, m in mods:
        m.identify(db, probes[0][1])  # page the index in
    cpu: dict = {(name, kind): [] for name, _ in mods for kind in ("genuine", "unknown")}
    hits = {name: 0 for name, _ in mods}
    named = {name: 0 for name, _ in mods}
    for j, (item, p) in enumerate(probes):
        kind = "genuine" if item else "unknown"
        for name, m in (mods if j % 2 == 0 else mods[::-1]):
            t = time.process_time()
            r = m.identify(db, p)
            cpu[(name, kind)].append((time.process_time() - t) * 1e3)
            if item:
                hits[name] += r.item is not None and r.item.split("-copy")[0] == item
            else:
                named[name] += r.item is not None
    res = {"references": len(db), "index_mb": round(db.index_nbytes() / 2**20, 1),
           "index_entries": int(len(db.index.entries)), "load_average": os.getloadavg()}
    for name, _ in mods:
        res[name] = {"genuine_cpu_ms_median": round(statistics.median(cpu[(name, "genuine")]), 2),
                     "unknown_cpu_ms_median": round(statistics.median(cpu[(name, "unknown")]), 2) if unknown else None,
                     "rank1": f"{hits[name]} of {genuine}", "unknown_identified": f"{named[name]} of {unknown}"}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True, help="a database kept by tools/bench_match.py --keep (KEEP/n<N>)")
    ap.add_argument("--copies", type=int, default=10, help="copies of it (the size: copies x its references)")
    ap.add_argument("--out", required=True, help="the replicated database (reused when complete)")
    ap.add_argument("--genuine", type=int, default=100, help="genuine probes (at most the kept fields)")
    ap.add_argument("--unknown", type=int, default=10, help="unknown probes")
    ap.add_argument("--old", default=None, help="also time this revision's identify, alternated probe by probe")
    a = ap.parse_args(argv)
    if not os.path.exists(os.path.join(a.out, "index", "meta.json")):
        build(a.src, a.out, a.copies)
    print(json.dumps(measure(a.out, a.genuine, a.unknown, old_module(a.old) if a.old else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
