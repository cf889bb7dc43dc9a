"""Optics and exposure: a live focus score, and an exposure sweep that stores its recommendation.

    for r in focus_readings(sc, count=0):        # endless; the CLI draws a meter per reading
        print(r.focus, r.best)
    result = exposure_sweep(sc, [2000, 4000, 8000, 16000], store=True)
    print(result.best.exposure_us, result.stored)

Both take raw frames (glint.bringup.frames) and judge them with the firmware's own
detector metrics: focus is Q_FOCUS (mean log2 curvature of the spots; >= 800 is sharp),
exposure is chosen for the best median spot SNR among frames that are neither dark
nor saturated, the shorter exposure winning ties (less motion blur in the field).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Iterator

from glint.bringup.frames import FrameStats, capture_frame, config_value, frame_stats
from glint.errors import UsageError
from glintcore import proto

_log = logging.getLogger(__name__)

DEFAULT_EXPOSURES = (1000, 2000, 4000, 8000, 16000, 32000)  # us, a factor 2 apart
SAT_LIMIT_PERMILLE = 2.0  # more saturated pixels than this clips spot centroids
DARK_P99 = 40  # a frame whose 99th percentile is below this has no usable spots
SETTLE_S = 0.0  # extra wait after changing exposure (sensors apply it on the next frame anyway)
EXPOSURE_MIN_US, EXPOSURE_MAX_US = 10, 1000000  # firmware config schema bounds


@dataclass
class FocusReading:
    index: int
    focus: int
    spots: int
    snr: float
    guidance: int
    best: int  # best focus so far in this session
    stats: FrameStats


def focus_readings(scanner, count: int = 0, interval: float = 0.0) -> Iterator[FocusReading]:
    """Capture frames and yield their focus score; ``count`` 0 runs until the caller stops."""
    best = 0
    i = 0
    while count <= 0 or i < count:
        st = frame_stats(capture_frame(scanner))
        best = max(best, st.focus)
        yield FocusReading(i, st.focus, st.spots, st.snr, st.guidance, best, st)
        i += 1
        if interval > 0:
            time.sleep(interval)


@dataclass
class SweepRow:
    exposure_us: int
    stats: FrameStats

    @property
    def usable(self) -> bool:
        s = self.stats
        return s.saturated_permille <= SAT_LIMIT_PERMILLE and s.p99 >= DARK_P99 and s.spots > 0

    @property
    def verdict(self) -> str:
        s = self.stats
        if s.saturated_permille > SAT_LIMIT_PERMILLE:
            return "saturated"
        if s.p99 < DARK_P99:
            return "too dark"
        if s.spots == 0:
            return "no spots"
        return "ok" if s.guidance == proto.GD_OK else s.guidance_text.split(":")[0]


@dataclass
class SweepResult:
    rows: list[SweepRow] = field(default_factory=list)
    best: SweepRow | None = None
    previous_us: int | None = None
    stored: bool = False


def recommend(rows: list[SweepRow]) -> SweepRow | None:
    """The row to keep: highest SNR among usable frames (guidance OK first), shorter exposure on ties."""
    usable = [r for r in rows if r.usable]
    if not usable:
        return None
    return max(usable, key=lambda r: (r.stats.guidance == proto.GD_OK, r.stats.snr, -r.exposure_us))


def exposure_sweep(scanner, exposures=DEFAULT_EXPOSURES, store: bool = True, on_row=None) -> SweepResult:
    """Capture at each exposure and pick the best; ``store`` saves it on the device (config set).

    The device's previous exposure is restored when nothing is usable or ``store`` is off.
    ``on_row(row)`` is called as each row is measured (progress display).
    """
    values = sorted({int(e) for e in exposures})
    if not values or values[0] < EXPOSURE_MIN_US or values[-1] > EXPOSURE_MAX_US:
        raise UsageError(f"exposures must be {EXPOSURE_MIN_US}..{EXPOSURE_MAX_US} us")
    result = SweepResult(previous_us=_as_int(config_value(scanner, "exposure_us")))
    try:
        for us in values:
            scanner.config_set("exposure_us", us)
            if SETTLE_S:
                time.sleep(SETTLE_S)
            capture_frame(scanner)  # the first frame after a change may still carry the old exposure
            row = SweepRow(us, frame_stats(capture_frame(scanner)))
            result.rows.append(row)
            if on_row:
                on_row(row)
        result.best = recommend(result.rows)
    finally:
        keep = result.best.exposure_us if (result.best and store) else result.previous_us
        if keep is not None:
            scanner.config_set("exposure_us", keep)
    result.stored = bool(result.best and store)
    return result


def _as_int(v) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


__all__ = ["focus_readings", "FocusReading", "exposure_sweep", "recommend", "SweepRow", "SweepResult",
           "DEFAULT_EXPOSURES", "SAT_LIMIT_PERMILLE"]
