"""Raw frames from a scanner and what they say: statistics, spot quality, focus.

    from glint.link import open_scanner
    from glint.bringup.frames import capture_frame, frame_stats, save_png
    with open_scanner(url) as sc:
        img = capture_frame(sc)           # (H, W) uint8, exactly the camera's buffer
        save_png(img, "frame.png")
        print(frame_stats(img))           # levels, histogram, and the firmware detector's quality

The frame comes in MSG_CAPTURE chunks (offset 0 takes a new picture); the quality
numbers come from glint.imaging.detect, the host twin that is bit-identical to the
firmware's detector, so bring-up sees what a scan would see.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from glint.errors import DeviceError, UsageError
from glintcore import proto
from glintcore.descriptor import Q_BACKGROUND, Q_FOCUS, Q_MEAN, Q_NOISE, Q_SNR, Q_SPOTS

_log = logging.getLogger(__name__)

CHUNK = 1024  # bytes asked per MSG_CAPTURE (the firmware caps a response at its own CAPTURE_CHUNK)
SATURATED = 255
HIST_BINS = 16
FOCUS_GOOD = 800  # descriptor.Q_FOCUS: below this the detector reports out of focus


def capture_frame(scanner, chunk: int = CHUNK) -> np.ndarray:
    """One new raw frame from the camera as an (H, W) uint8 array."""
    body = scanner.request(proto.MSG_CAPTURE, {"offset": 0, "length": chunk}).body
    w, h = int(body.get("width", 0)), int(body.get("height", 0))
    if w <= 0 or h <= 0:
        raise DeviceError("the scanner answered a capture without its frame size",
                          hint="update its firmware: glint fw deploy PORT")
    total = w * h
    buf = bytearray(total)
    off = 0
    while True:
        data = bytes(body.get("data", b""))
        if int(body.get("offset", -1)) != off or not data:
            raise DeviceError(f"the scanner sent frame bytes for offset {body.get('offset')} when {off} was asked")
        buf[off:off + len(data)] = data
        off += len(data)
        if off >= total:
            break
        body = scanner.request(proto.MSG_CAPTURE, {"offset": off, "length": chunk}).body
    return np.frombuffer(bytes(buf[:total]), dtype=np.uint8).reshape(h, w)


def config_value(scanner, key: str):
    """One device setting. Reads the whole config: the answer to a keyed config-get differs
    between firmware ({"key", "value"}) and link versions, the full map does not."""
    cfg = scanner.config_get()
    if isinstance(cfg, dict) and "config" in cfg and isinstance(cfg["config"], dict):
        cfg = cfg["config"]
    return cfg.get(key) if isinstance(cfg, dict) else None


def save_png(img: np.ndarray, path: str | Path) -> Path:
    """Write an 8-bit grayscale PNG (UsageError when the path cannot be written)."""
    import cv2

    path = Path(path)
    if path.suffix.lower() not in (".png", ".pgm"):
        raise UsageError(f"{path}: write .png or .pgm")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise UsageError(f"cannot write {path}")
    return path


@dataclass
class FrameStats:
    """Levels of one frame plus the detector's quality and guidance."""

    width: int
    height: int
    min: int
    max: int
    mean: float
    std: float
    p01: int
    p50: int
    p99: int
    saturated_permille: float
    histogram: list
    spots: int
    snr: float
    focus: int
    background: int
    noise: float
    guidance: int

    @property
    def guidance_text(self) -> str:
        return proto.GUIDANCE_TEXT.get(self.guidance, f"guidance {self.guidance}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["guidance_text"] = self.guidance_text
        return d

    def lines(self) -> list[str]:
        bar = histogram_bar(self.histogram)
        return [
            f"frame      {self.width}x{self.height}",
            f"levels     min {self.min}  p1 {self.p01}  median {self.p50}  p99 {self.p99}  max {self.max}",
            f"mean/std   {self.mean:.1f} / {self.std:.1f}   saturated {self.saturated_permille:.2f} per mille",
            f"histogram  |{bar}|  (0..255, {HIST_BINS} bins, log scale)",
            f"spots      {self.spots}  median SNR {self.snr:.1f}  focus {self.focus} (>= {FOCUS_GOOD} is sharp)",
            f"background {self.background}  noise {self.noise:.2f}",
            f"guidance   {self.guidance_text}",
        ]


def frame_stats(img: np.ndarray) -> FrameStats:
    """Statistics of ``img`` and the firmware detector's verdict on it."""
    from glint.imaging import detect

    a = np.asarray(img, dtype=np.uint8)
    flat = a.reshape(-1)
    p01, p50, p99 = (int(v) for v in np.percentile(flat, [1, 50, 99], method="nearest"))
    hist = np.bincount(flat >> 4, minlength=HIST_BINS).tolist()
    det = detect(a)
    q = det.quality
    return FrameStats(
        width=int(a.shape[1]), height=int(a.shape[0]), min=int(flat.min()), max=int(flat.max()),
        mean=float(flat.mean()), std=float(flat.std()), p01=p01, p50=p50, p99=p99,
        saturated_permille=1000.0 * float(np.count_nonzero(flat >= SATURATED)) / flat.size,
        histogram=hist, spots=int(q.get(Q_SPOTS, 0)), snr=q.get(Q_SNR, 0) / 16.0, focus=int(q.get(Q_FOCUS, 0)),
        background=int(q.get(Q_BACKGROUND, q.get(Q_MEAN, 0))), noise=q.get(Q_NOISE, 0) / 16.0,
        guidance=int(det.guidance),
    )


def histogram_bar(hist: list) -> str:
    """A one-line log-scale histogram (' .:-=+*#%@')."""
    ramp = " .:-=+*#%@"
    top = max(max(hist), 1)
    out = []
    for v in hist:
        level = 0 if v == 0 else 1 + int((len(ramp) - 2) * np.log1p(v) / np.log1p(top))
        out.append(ramp[min(level, len(ramp) - 1)])
    return "".join(out)


def ascii_meter(value: float, full: float, width: int = 40) -> str:
    """``[#####.....]`` for a progress-style display of ``value`` out of ``full``."""
    n = int(round(width * max(0.0, min(1.0, value / full)))) if full > 0 else 0
    return "[" + "#" * n + "." * (width - n) + "]"


__all__ = ["capture_frame", "config_value", "save_png", "frame_stats", "FrameStats", "histogram_bar", "ascii_meter", "FOCUS_GOOD"]
