"""A scanner's signing half in software, for API tests: real descriptors of simulated coatings,
signed with a real P-256 key (glintcore), provisioned into a server home's registry."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from glintcore import cose, descriptor as D, p256

FW = "0.4.0"


class SoftDevice:
    def __init__(self, seed: int = 1):
        self.key = p256.private_key_from_entropy(bytes([seed]) * 32)
        self.pub = p256.public_key(self.key)
        self.device_id = bytes([0xD0, seed]) + bytes(6)
        self.counter = 0

    @property
    def hex(self) -> str:
        return self.device_id.hex()

    def provision(self, home) -> None:
        from glint.registry import Registry

        with Registry.open(home) as reg:
            reg.add_device(self.device_id, self.pub, board="sim", fw=FW)

    def sign(self, spots, width: int, height: int, nonce: bytes | None = None, counter: int | None = None,
             key: int | None = None) -> bytes:
        """A signed scan of ``spots`` (a glint.match SpotSet, or (x_px, y_px, flux) rows)."""
        self.counter = self.counter + 1 if counter is None else counter
        xy = np.asarray(spots.xy if hasattr(spots, "xy") else [s[:2] for s in spots], float)
        recs = [(int(round(x * 32)), int(round(y * 32)), 200) for x, y in xy][:255]
        d = D.make(self.device_id, self.counter, FW, "sim", width, height, {0: 1}, D.pack_spots(recs), 0,
                   nonce=nonce)
        return cose.sign1(D.encode(d), self.key if key is None else key, kid=self.device_id)


def sim_coating(seed: int):
    """(reference, [probe SpotSets...], frame size) of one simulated coating."""
    from glint import sim
    from glint.match import enroll, spots_from_image
    from glint.sim.render import Pose

    c = sim.make_coating(seed)
    spots = [spots_from_image(sim.capture(c, seed=k, pose=Pose()).image) for k in range(3)]
    spots += [spots_from_image(sim.capture(c, seed=11 + k).image) for k in range(2)]
    ref = enroll(spots[:3])
    return ref, spots[3:], (ref.width, ref.height)


ITEM = "acme:BAG-1"
NOW = int(time.time())


def register_body(item: str = ITEM, t: int = NOW - 100) -> dict:
    """A brand's factory register event of ``item`` (upload it with role="brand")."""
    return {"kind": "register", "item": item, "time": t, "data": {"brand": "ACME", "prov": {"class": "factory"}}}


def enroll_body(device, coating, item: str = ITEM, t: int = NOW - 90) -> dict:
    """An enroll event of ``item``'s coating c1: its reference, and the first probe signed by ``device``."""
    import hashlib

    from glint.match.database import to_record
    from glint.server import wire
    from glint.server.admit import reference_wire

    ref, probes, (w, h) = coating
    body = wire.event_body("enroll", item, t, {"coat": "c1", "ref": hashlib.sha256(to_record(ref).tobytes()).digest()},
                           device.sign(probes[0], w, h))
    body["reference"] = reference_wire(ref)
    return body


class Api:
    """The HTTP API app of a home through Flask's test client, with one API key per role."""

    def __init__(self, home: Path):
        from glint.server.app import create_app
        from glint.server.auth import KeyStore

        self.home = home
        from glint.home import Home

        ks = KeyStore(Home(home).db)  # the home's database: its glint.db, or PostgreSQL
        self.keys = {role: ks.create(role, f"{role}-host")[1] for role in ("bench", "brand", "auditor")}
        ks.close()
        self.app = create_app(home)
        self.client = self.app.test_client()
        self.n = 0

    def post(self, body, role="bench", idem=None):
        self.n += 1
        headers = {"Idempotency-Key": idem or f"k{self.n}"}
        token = self.keys.get(role) if role else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.post("/v1/events", json=body, headers=headers)

    def get(self, path, role=None):
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return self.client.get(path, headers=headers)

    def close(self):
        self.app.glint_close()
