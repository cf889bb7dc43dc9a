"""Spot sets: the matcher's input, built from a signed scan, a bare descriptor or an image.

A :class:`SpotSet` is what every matching function consumes: spot centres in
pixels (float, frame coordinates of the capture), their flux, and the frame size.
``load_spots(path)`` accepts the same inputs as the CLI: an 8-bit grayscale PNG or
PGM (run through the host detector, bit-identical to the firmware) or a signed scan
(COSE_Sign1 bytes whose payload is a scan descriptor). Signature checking belongs to
the host companion; pass ``public_key`` to have it done here as well.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glint.errors import MatchError, UsageError
from glint.imagefiles import is_image
from glint.imaging.twin import SUM_X16
from glintcore.descriptor import SPOT_SCALE  # 1/32 px per unit of the spot records: the wire contract

log = logging.getLogger(__name__)

SPOT_RECORD = 5  # bytes per spot record: x u16, y u16, flux u8
MAX_INPUT_BYTES = 64 * 1024 * 1024  # refuse absurd files before reading them
# A spot "stands clear of the noise" when its 3x3 sum is at least 1.5 x the detector's significance threshold
# (SUM_X16 / 16 x the frame's measured 3x3-sum noise): at the threshold itself the dim 20 ms real frame has 18
# false spots among 32, above 1.5 x it 12 spots, 11 of them stars (tools/eval_detector.py --real-exposures).
CLEAR_FACTOR = 1.5


@dataclass
class SpotSet:
    """Spots of one capture: ``xy`` (N,2) float64 px, ``flux`` (N,) float64, frame ``width`` x ``height``."""

    xy: np.ndarray
    flux: np.ndarray
    width: int
    height: int
    source: str = ""
    meta: dict = field(default_factory=dict)
    sigma: np.ndarray | None = None  # per-spot localisation sigma (px per axis) when known; else from meta quality

    def __post_init__(self):
        self.xy = np.asarray(self.xy, dtype=np.float64).reshape(-1, 2)
        self.flux = np.asarray(self.flux, dtype=np.float64).reshape(-1)
        if len(self.flux) != len(self.xy):
            raise MatchError(f"spot set {self.source or '?'}: {len(self.xy)} positions but {len(self.flux)} fluxes")

    def __len__(self) -> int:
        return len(self.xy)

    def spot_sigma(self, model) -> np.ndarray:
        """Per-spot localisation sigma (px per axis): ``sigma`` if given, else the noise model on the
        capture's quality map (glint.match.noise)."""
        if self.sigma is not None:
            return np.asarray(self.sigma, np.float64).reshape(-1)
        from glint.match.noise import spot_sigma

        return spot_sigma(self.flux, self.meta.get("quality"), model)


def spots_from_records(records: bytes, width: int, height: int, source: str = "") -> SpotSet:
    """Decode descriptor spot records (x u16 BE, y u16 BE in 1/32 px, flux u8) into a SpotSet."""
    if len(records) % SPOT_RECORD:
        raise MatchError(f"{source or 'scan'}: spot records are {len(records)} bytes, not a multiple of {SPOT_RECORD}")
    rec = np.frombuffer(records, dtype=np.dtype([("x", ">u2"), ("y", ">u2"), ("f", "u1")]))
    xy = np.stack([rec["x"], rec["y"]], axis=1).astype(np.float64) / SPOT_SCALE
    return SpotSet(xy, rec["f"].astype(np.float64), int(width), int(height), source)


def spots_to_records(spots: SpotSet) -> bytes:
    """Encode a SpotSet as descriptor spot records (sorted by descending flux, flux scaled to 255)."""
    flux = spots.flux
    scaled = np.zeros(len(flux), dtype=np.uint8)
    if len(flux) and flux.max() > 0:
        scaled = np.clip(np.round(flux * 255.0 / flux.max()), 0, 255).astype(np.uint8)
    q = np.clip(np.round(spots.xy * SPOT_SCALE), 0, 65535).astype(np.int64)
    order = np.lexsort((q[:, 0], q[:, 1], -scaled.astype(np.int64)))
    rec = np.zeros(len(order), dtype=np.dtype([("x", ">u2"), ("y", ">u2"), ("f", "u1")]))
    rec["x"], rec["y"], rec["f"] = q[order, 0], q[order, 1], scaled[order]
    return rec.tobytes()


def spots_from_descriptor(payload: bytes, source: str = "") -> SpotSet:
    """Spots of a scan descriptor (the COSE payload), validated by glintcore.descriptor."""
    from glintcore import descriptor
    from glintcore.errors import DecodeError

    try:
        fields = descriptor.decode(payload)
    except DecodeError as e:
        raise MatchError(f"{source or 'scan'}: not a valid scan descriptor: {e}") from None
    return spots_from_fields(fields, source)


def spots_from_fields(fields: dict, source: str = "") -> SpotSet:
    """Spots of an already decoded and validated scan descriptor (glintcore.descriptor.decode's
    fields, e.g. glint.checks.CheckedScan.fields): what :func:`spots_from_descriptor` gives."""
    width, height = fields[6]
    s = spots_from_records(fields[8], width, height, source)
    s.meta = {"device_id": bytes(fields[1]).hex(), "counter": fields[2], "quality": dict(fields.get(7, {})),
              "guidance": int(fields[9])}
    return s


def spots_from_scan(data: bytes, source: str = "", public_key: bytes | None = None) -> SpotSet:
    """Spots of a signed scan (COSE_Sign1 bytes). With ``public_key`` (65 bytes) the signature is checked."""
    from glintcore import cose
    from glintcore.errors import GlintError as CoreError

    try:
        if public_key is not None:
            payload = cose.verify1(data, public_key)
        else:
            payload = cose.decode1(data).payload
    except CoreError as e:
        raise MatchError(f"{source or 'scan'}: not a valid signed scan: {e.msg}") from None
    if not isinstance(payload, (bytes, bytearray)):
        raise MatchError(f"{source or 'scan'}: signed scan has no payload")
    return spots_from_descriptor(bytes(payload), source)


def spots_from_image(image: np.ndarray, source: str = "") -> SpotSet:
    """Run the host detector (bit-identical to the firmware) on an 8-bit grayscale image."""
    from glint import imaging

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2:
        raise MatchError(f"{source or 'image'}: need an 8-bit grayscale image, got {image.dtype} {image.shape}")
    det = imaging.detect(image)
    # Use the quantised records, exactly what the firmware would have signed.
    s = spots_from_records(det.spots, image.shape[1], image.shape[0], source)
    s.meta = {"quality": dict(det.quality), "guidance": int(det.guidance)}
    if det.significance is not None:
        # how many spots stand clear of the frame's measured noise (the exposure check of a failed verify)
        s.meta["clear"] = int(np.count_nonzero(det.significance >= CLEAR_FACTOR * SUM_X16 / 16.0))
    return s


def load_spots(path: str | Path, public_key: bytes | None = None) -> SpotSet:
    """Load a probe or capture from a file: PNG/PGM/JPEG image or signed scan; one-line MatchError otherwise."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise UsageError(f"cannot read {p}: {e.strerror}") from None
    if size == 0:
        raise MatchError(f"{p}: empty file")
    if size > MAX_INPUT_BYTES:
        raise MatchError(f"{p}: {size} bytes is too large for an image or a scan")
    data = p.read_bytes()
    if is_image(data):
        from glint import imaging

        try:
            image = imaging.load_image(p)
        except MatchError:
            raise
        except Exception as e:  # imaging raises GlintError subclasses; keep the message one line
            msg = getattr(e, "msg", None) or str(e)
            raise MatchError(f"{p}: unreadable image: {msg}") from None
        return spots_from_image(image, str(p))
    return spots_from_scan(data, str(p), public_key)
