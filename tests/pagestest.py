"""A served home with items for the public-page tests (Flask test client and the browser tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from glint import publish
from glint.home import Home
from glint.ledger import Keys, Ledger
from glint.ledger.passport import set_fields

GTIN = "09506000134352"
ITEM = f"https://brand.example/01/{GTIN}/21/ABC123"   # a GS1 Digital Link item
OTHER = f"https://brand.example/01/{GTIN}/21/XYZ-9"    # its history is edited in storage by a test
PLAIN = "acme:BAG-7"                                   # a brand serial: certificate at /c/ID
T0 = 1_760_000_000


def make_home(root: Path) -> dict:
    """A home with three certified items; returns their certificate ids and the home."""
    Home(root).ensure()
    keys = Keys.load(root, create=True)
    out: dict = {"home": root, "keys": keys}
    with Ledger.open(root / "ledger.db", keys=keys, durable=False) as led:
        for item in (ITEM, OTHER, PLAIN):
            # A passport field set at registration is read by the brand only; the public ones are set with an audience.
            led.register_item(item, "ACME", passport={"unit_cost": "42 EUR"}, time=T0)
            set_fields(led, item, {"origin": "Italy", "materials": "<b>calf</b> & \"brass\""}, audience="public",
                       time=T0 + 5)
            led.add_coating(item, "c1", ref=bytes(32), time=T0 + 10)
            led.transfer(item, owner="bob <script>alert(1)</script>", time=T0 + 20)
            a = led.record_verify(item, "pass", fap=2.5e-10, device="a1b2c3d4e5f60708", operator="ana",
                                  location="Paris", scan=b"signed scan bytes " + item.encode(), time=T0 + 30)
            out[item] = a
            publish.publish(Home(root), led.issue_certificate(a.index), cid(a))  # as `glint cert issue` does
    return out


def cid(appended) -> str:
    return appended.leaf_hash[:16].hex()


def serve(w: dict):
    """Run `glint serve` on a free loopback port for the home ``w`` (make_home's), set ``w["base"]``,
    yield ``w``, and stop the server: the body of a module-scoped fixture."""
    proc = subprocess.Popen([sys.executable, "-m", "glint", "serve", "--listen", "127.0.0.1:0", "--home", str(w["home"])],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, GLINT_LOG="ERROR"))
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "listening on" in line, line
        w["base"] = "http://127.0.0.1:" + line.split("127.0.0.1:")[1].split()[0]
        yield w
    finally:
        proc.terminate()
        proc.wait(timeout=30)
