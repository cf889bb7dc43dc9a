#!/usr/bin/env python3
"""Concurrency and faults on a PostgreSQL ledger: 4 host processes append at once while a fifth
is SIGKILLed in the middle of its appends; repeated --rounds times on a fresh database each.

    python tools/pg_faults.py                      # 20 rounds (a throwaway cluster in /tmp)
    python tools/pg_faults.py --rounds 3 --seconds 1.5 --json
    python tools/pg_faults.py --url postgresql://USER@HOST/DB     # a server of yours (a database per round)

Each writer is its own process with its own connection and Ledger, appending verify events on
items shared by all writers (their chains interleave across hosts), each event tagged with a
unique note; it records an event as acknowledged only after ``record_verify`` returned (the
commit is durable), and every writer signs a checkpoint every 25 appends (checkpoints are signed
concurrently too). The victim is killed with SIGKILL at a random moment (almost always waiting
inside an append: a transaction in flight, or a commit whose acknowledgement it never saw).

After each round, checked:
- every acknowledged event is in the log, at its acknowledged index with its leaf hash (0 lost);
- no note appears twice (0 duplicated), and the log has no gap;
- ``glint ledger verify --ledger URL`` (the CLI, in a subprocess) exits 0;
- the checkpoint chain: every stored note verifies with the log key and each is consistent with
  the one before (RFC 9162 consistency proof from the stored tree);
- a new writer appends and signs after the kill (the sequencer was released).
Exit 0 when every round held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "shared"))

from glint.ledger import Keys, Ledger, open_checkpoint, verify_consistency  # noqa: E402
from glint.ledger.log import EventSpec  # noqa: E402

ITEMS = 40
WRITERS = 4
CHECKPOINT_EVERY = 25


def _items() -> list[str]:
    return [f"acme:FAULT-{i:03d}" for i in range(ITEMS)]


def worker(url: str, keyhome: str, ackfile: str, seed: int, gofile: str) -> None:
    """Once the go file names the deadline, append until then; one line per acknowledged event:
    index, leaf hash, note."""
    rng = random.Random(seed)
    keys = Keys.load(keyhome)
    items = _items()
    fd = os.open(ackfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    n = 0
    with Ledger.open(url, keys=keys) as led:
        _ = led.size  # connected and caught up
        Path(ackfile + ".ready").touch()
        parent, give_up = os.getppid(), time.time() + 300
        while not Path(gofile).exists():
            if os.getppid() != parent or time.time() > give_up:
                return  # the round was abandoned
            time.sleep(0.005)
        deadline = float(Path(gofile).read_text())
        while time.time() < deadline:
            note = f"w{seed}-{n}"
            a = led.append_event("verify", rng.choice(items),
                                 {"res": "pass" if rng.random() < 0.9 else "fail", "fap": 1e-9, "op": f"op-{seed}",
                                  "note": note}, scan=os.urandom(64))
            os.write(fd, f"{a.index} {a.leaf_hash.hex()} {note}\n".encode())
            n += 1
            if n % CHECKPOINT_EVERY == 0:
                led.checkpoint()
    os.close(fd)


def _acks(path: Path) -> list[tuple[int, str, str]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:  # a line cut by the kill is not an acknowledgement the writer saw through
            out.append((int(parts[0]), parts[1], parts[2]))
    return out


def one_round(url: str, keyhome: str, keys: Keys, work: Path, r: int, seconds: float, rng: random.Random) -> dict:
    with Ledger.open(url, keys=keys) as led:
        led.append_batch([EventSpec("register", it, {"brand": "ACME", "prov": {"class": "factory"}})
                          for it in _items()])
        led.checkpoint()
    files = [work / f"r{r}-w{k}.acks" for k in range(WRITERS + 1)]
    gofile = work / f"r{r}.go"
    env = dict(os.environ)
    env.pop("GLINT_DATABASE", None)
    procs = []
    for k in range(WRITERS + 1):
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", url, keyhome, str(files[k]), str(k),
                                       str(gofile)], env=env))
    try:
        return _run_round(url, keys, work, r, seconds, rng, files, gofile, procs, env)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _run_round(url, keys, work, r, seconds, rng, files, gofile, procs, env) -> dict:
    victim = procs[-1]
    t_wait = time.time() + 120
    while not all(Path(str(f) + ".ready").exists() for f in files):
        if time.time() > t_wait or any(p.poll() is not None for p in procs):
            codes = [p.poll() for p in procs]
            raise SystemExit(f"pg_faults: round {r}: the writers did not start (exit codes {codes})")
        time.sleep(0.01)
    tmp = gofile.with_suffix(".tmp")
    tmp.write_text(str(time.time() + seconds))
    tmp.replace(gofile)
    time.sleep(rng.uniform(0.2, 0.8) * seconds)
    victim_acks_before = len(_acks(files[-1]))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    for p in procs[:-1]:
        if p.wait(timeout=seconds + 120) != 0:
            raise SystemExit(f"pg_faults: round {r}: a writer exited {p.returncode}")
    acks = [a for f in files for a in _acks(f)]
    problems = []
    with Ledger.open(url, keys=keys) as led:
        size = led.size
        notes: dict[str, int] = {}
        by_index = {}
        for e in led.events(0, size):
            by_index[e.index] = e
            note = e.data.get("note")
            if note is not None:
                if note in notes:
                    problems.append(f"note {note} stored twice (indexes {notes[note]} and {e.index})")
                notes[note] = e.index
        if sorted(by_index) != list(range(size)):
            problems.append("the log has a gap")
        lost = 0
        for idx, lh, note in acks:
            e = by_index.get(idx)
            if e is None or e.hash.hex() != lh or e.data.get("note") != note:
                lost += 1
                problems.append(f"acknowledged {note} at {idx} is not in the log as acknowledged")
        dup = sum(1 for p in problems if "twice" in p)
        # The checkpoint chain: every note verifies, each consistent with the previous one.
        cps = led.store.checkpoints()
        prev = None
        for row in cps:
            cp = open_checkpoint(row.note, keys.log_verifier(), keys.origin)
            if prev is not None and prev.size < cp.size:
                verify_consistency(prev.size, cp.size, led.prove_consistency(prev.size, cp.size), prev.root, cp.root)
            prev = cp
        # A new writer appends and signs after the kill: the sequencer was released.
        led.append_event("verify", _items()[0], {"res": "pass", "note": f"after-{r}"})
        led.checkpoint()
    v = subprocess.run([sys.executable, "-m", "glint", "--home", str(work / "verify-home"), "ledger", "verify",
                        "--ledger", url], capture_output=True, text=True, timeout=300, env=env)
    if v.returncode != 0:
        problems.append(f"glint ledger verify: {(v.stdout + v.stderr).strip()}")
    victim_acked = len(_acks(files[-1]))
    return {"round": r, "acked": len(acks), "stored": size, "lost": lost, "duplicated": dup,
            "victim_acked": victim_acked, "victim_acked_at_kill": victim_acks_before,
            "checkpoints": len(cps), "verify": v.stdout.strip() if v.returncode == 0 else "FAILED",
            "problems": problems[:5]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20, help="rounds, each on a fresh database")
    ap.add_argument("--seconds", type=float, default=2.0, help="how long the writers append in each round")
    ap.add_argument("--url", help="a PostgreSQL server to use (default: a throwaway cluster); a database per round")
    ap.add_argument("--seed", type=int, default=1, help="seed of the kill moments")
    ap.add_argument("--json", action="store_true", help="print the rounds as JSON")
    ap.add_argument("--worker", nargs=5, metavar=("URL", "KEYS", "ACKS", "SEED", "GO"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.worker[0], a.worker[1], a.worker[2], int(a.worker[3]), a.worker[4])
        return 0
    import psycopg

    from glint.db import with_dbname
    from glint.pgcluster import Cluster

    rng = random.Random(a.seed)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="glint-pg-faults-") as tmp:
        work = Path(tmp)
        work.chmod(0o711)  # the cluster runs as another account when this runs as root
        keyhome = str(work / "home")
        keys = Keys.load(keyhome, create=True)
        cluster = None if a.url else Cluster.start(durable=False, root=work / "pg")
        try:
            for r in range(1, a.rounds + 1):
                if cluster is not None:
                    url = cluster.create_database(f"faults_{r}")
                else:
                    name = f"glint_faults_{os.getpid()}_{r}"
                    with psycopg.connect(a.url, autocommit=True) as c:
                        c.execute(f'CREATE DATABASE "{name}"')
                    url = with_dbname(a.url, name)
                res = one_round(url, keyhome, keys, work, r, a.seconds, rng)
                rounds.append(res)
                print(f"round {r:2d}: {res['acked']} acknowledged, {res['stored']} stored, lost {res['lost']}, "
                      f"duplicated {res['duplicated']}, victim killed after {res['victim_acked']} acks, "
                      f"{res['checkpoints']} checkpoints, verify: {res['verify']}"
                      + (f"; PROBLEMS: {res['problems']}" if res["problems"] else ""), flush=True)
        finally:
            if cluster is not None:
                cluster.stop()
    bad = [r for r in rounds if r["problems"]]
    total = {"rounds": len(rounds), "acked": sum(r["acked"] for r in rounds),
             "lost": sum(r["lost"] for r in rounds), "duplicated": sum(r["duplicated"] for r in rounds),
             "failed_rounds": len(bad)}
    print(f"{total['rounds']} rounds: {total['acked']} acknowledged appends, lost {total['lost']}, "
          f"duplicated {total['duplicated']}, rounds with a problem: {total['failed_rounds']}")
    if a.json:
        print(json.dumps({"total": total, "rounds": rounds}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
