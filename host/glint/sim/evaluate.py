"""Score a spot detector against the simulator's ground truth.

Definitions (docs/simulator.md):
- a truth particle is *detectable* when its SNR (own brightest pixel over local
  noise sigma) is >= SNR_MIN, it lies at least EDGE_PX inside the frame and no
  brighter particle lies within RESOLVE_PX (closer pairs are one spot to any
  detector at this magnification: 1.5 x the in-focus PSF's FWHM);
- detections and truth are matched greedily, nearest pair first, within MATCH_PX;
- recall = matched detectable / detectable; precision = detections matched to
  any truth particle / detections; RMSE = localisation error of detections
  matched to detectable particles that are *isolated* (no other particle within
  RESOLVE_PX: a neighbour's light shifts any centroid), and rmse_all over every
  matched detectable particle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from glint.sim.render import Capture

SNR_MIN = 5.0
EDGE_PX = 3.0
RESOLVE_PX = 3.0
MATCH_PX = 1.5


@dataclass
class Score:
    detectable: int = 0
    recalled: int = 0
    detections: int = 0
    true_detections: int = 0
    sq_err: float = 0.0
    n_err: int = 0
    sq_err_all: float = 0.0
    n_err_all: int = 0

    def add(self, other: "Score") -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    @property
    def recall(self) -> float:
        return self.recalled / self.detectable if self.detectable else float("nan")

    @property
    def precision(self) -> float:
        return self.true_detections / self.detections if self.detections else float("nan")

    @property
    def rmse(self) -> float:
        return math.sqrt(self.sq_err / self.n_err) if self.n_err else float("nan")

    @property
    def rmse_all(self) -> float:
        return math.sqrt(self.sq_err_all / self.n_err_all) if self.n_err_all else float("nan")

    def as_dict(self) -> dict:
        return {
            "recall": self.recall, "precision": self.precision, "rmse_px": self.rmse, "rmse_all_px": self.rmse_all,
            "detectable": self.detectable, "detections": self.detections,
        }


def detectable_mask(cap: Capture) -> tuple[np.ndarray, np.ndarray]:
    """(detectable, isolated) boolean masks over the capture's truth particles."""
    h, w = cap.image.shape
    xy, snr = cap.truth_xy, cap.truth_snr
    ok = (snr >= SNR_MIN) & (xy[:, 0] >= EDGE_PX) & (xy[:, 0] <= w - 1 - EDGE_PX)
    ok &= (xy[:, 1] >= EDGE_PX) & (xy[:, 1] <= h - 1 - EDGE_PX)
    iso = np.ones(len(xy), dtype=bool)
    if len(xy) > 1:
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        np.fill_diagonal(d, np.inf)
        brighter = cap.truth_flux[None, :] > cap.truth_flux[:, None]
        ok &= ~np.any((d < RESOLVE_PX) & brighter, axis=1)
        iso = d.min(axis=1) >= RESOLVE_PX
    return ok, ok & iso


def match(det_xy: np.ndarray, truth_xy: np.ndarray, radius: float = MATCH_PX) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching, nearest pairs first: [(det_index, truth_index, distance)]."""
    if len(det_xy) == 0 or len(truth_xy) == 0:
        return []
    d = np.hypot(det_xy[:, None, 0] - truth_xy[None, :, 0], det_xy[:, None, 1] - truth_xy[None, :, 1])
    di, ti = np.nonzero(d <= radius)
    order = np.argsort(d[di, ti], kind="stable")
    used_d, used_t, out = set(), set(), []
    for k in order:
        a, b = int(di[k]), int(ti[k])
        if a in used_d or b in used_t:
            continue
        used_d.add(a)
        used_t.add(b)
        out.append((a, b, float(d[a, b])))
    return out


def score(det_xy: np.ndarray, cap: Capture) -> Score:
    """Score detections (N,2 px) against one capture's truth."""
    det_xy = np.asarray(det_xy, dtype=float).reshape(-1, 2)
    ok, iso = detectable_mask(cap)
    pairs = match(det_xy, cap.truth_xy)
    s = Score(detectable=int(ok.sum()), detections=len(det_xy), true_detections=len(pairs))
    for _, t, dist in pairs:
        if ok[t]:
            s.recalled += 1
            s.sq_err_all += dist * dist
            s.n_err_all += 1
        if iso[t]:
            s.sq_err += dist * dist
            s.n_err += 1
    return s


def blob_detector(image: np.ndarray) -> np.ndarray:
    """OpenCV SimpleBlobDetector tuned for small bright spots; thresholds from the frame's median and MAD."""
    med = float(np.median(image))
    mad = float(np.median(np.abs(image.astype(float) - med))) / 0.6745
    p = cv2.SimpleBlobDetector.Params()
    p.filterByColor = True
    p.blobColor = 255
    p.minThreshold = min(med + 2.5 * max(mad, 1.0), 250)
    p.maxThreshold = 255
    p.thresholdStep = max(2.0, mad)
    p.minRepeatability = 2
    p.minDistBetweenBlobs = 2.0
    p.filterByArea = True
    p.minArea = 2
    p.maxArea = 400
    p.filterByCircularity = False
    p.filterByInertia = False
    p.filterByConvexity = False
    kps = cv2.SimpleBlobDetector.create(p).detect(image)
    return np.array([k.pt for k in kps], dtype=float).reshape(-1, 2)
