"""A Reference: the fused spots of an enrolled item, with its quad codes, and its bytes on disk."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np

from glint.errors import MatchError
from glint.match.codes import Quads, box_keys, reference_quads
from glint.match.params import MatchParams

REF_FORMAT = 1


def select_quads(q: Quads, support: np.ndarray, limit: int) -> Quads:
    """Up to ``limit`` quads, preferring spots seen in many captures.

    Among equals the choice is a deterministic pseudo-random one (a hash of the code),
    which spreads the quads over the spots: one lost spot must not take most of the
    item's codes with it, as it would if the brightest spots were favoured.
    """
    if len(q) <= limit:
        return q
    score = support[q.idx].sum(1).astype(np.float64)
    tiebreak = np.modf(np.abs(q.code @ np.array([7919.0, 104729.0, 1299709.0, 15485863.0])))[0]
    order = np.lexsort((tiebreak, -score))
    return q.take(np.sort(order[:limit]))


@dataclass
class Reference:
    """An enrolled item: spots ``xy`` (N,2) px in the reference frame, ``flux``, ``support``
    (how many captures saw each spot), the frame size, the parameters, and its quads."""

    xy: np.ndarray
    flux: np.ndarray
    support: np.ndarray
    width: int
    height: int
    params: MatchParams
    captures: int = 1
    info: dict = field(default_factory=dict)
    sigma: np.ndarray | None = None  # per-spot localisation sigma, px per axis (None: the noise model's nominal)
    noise_scale: float = 1.0  # the item's measured repeatability over the model's prediction (enrollment)
    record_sigma: np.ndarray | None = None  # a stored reference's sigma as its record codes it (to_record writes it back)
    _quads: Quads | None = field(default=None, repr=False)
    _boxes: tuple | None = field(default=None, repr=False)
    _xy1: np.ndarray | None = field(default=None, repr=False)
    _z: np.ndarray | None = field(default=None, repr=False)
    _similarity: tuple | None = field(default=None, repr=False)  # glint.match.verify.ref_similarity's, per quads

    @property
    def xy1(self) -> np.ndarray:
        """The spots in homogeneous form [x y 1] (N, 3), made once (verify maps them many times)."""
        if self._xy1 is None or len(self._xy1) != len(self.xy):
            self._xy1 = np.concatenate([self.xy, np.ones((len(self.xy), 1))], axis=1)
        return self._xy1

    @property
    def z(self) -> np.ndarray:
        """The spots as complex numbers x + 1j y (N,), made once."""
        if self._z is None or len(self._z) != len(self.xy):
            self._z = self.xy[:, 0] + 1j * self.xy[:, 1]
        return self._z

    def spot_sigma(self) -> np.ndarray:
        """Per-spot localisation sigma (px per axis) of the reference's spots (fused: over sqrt(support))."""
        if self.sigma is not None and len(self.sigma) == len(self.xy):
            return self.sigma
        from glint.match.noise import spot_sigma

        sig = spot_sigma(np.ones(len(self.xy)), None, self.params.noise)
        self.sigma = sig / np.sqrt(np.maximum(1, self.support))
        return self.sigma

    @property
    def quads(self) -> Quads:
        """Quads used by 1:1 verify (computed once)."""
        if self._quads is None:
            self._quads = select_quads(reference_quads(self.xy, self.params), self.support, self.params.verify_codes)
        return self._quads

    @property
    def boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted cell keys of the verify quads' tolerance boxes and the quad of each (computed once)."""
        if self._boxes is None:
            keys = box_keys(self.quads.code, self.params).ravel()
            order = np.argsort(keys, kind="stable")
            self._boxes = (keys[order], order // 16)
        return self._boxes

    def index_quads(self, fill: bool = False) -> Quads:
        """The (fewer) quads of the 1:N index's core region (glint.match.index.select_index; enrollment
        counts these), or with ``fill`` every quad put in the index (a sparse reference's fill band too)."""
        from glint.match.index import select_index

        q = reference_quads(self.xy, self.params)
        score = self.support[q.idx].sum(1).astype(np.float64) if len(q) else np.zeros(0)
        return q.take(select_index(np.zeros(len(q), np.int64), q, score, self.params, fill))

    def to_bytes(self) -> bytes:
        """Serialise (npz with a JSON header); ``from_bytes`` reads it back."""
        head = {"format": REF_FORMAT, "width": self.width, "height": self.height, "captures": self.captures,
                "params": self.params.to_dict(), "info": self.info, "noise_scale": self.noise_scale}
        buf = io.BytesIO()
        np.savez(buf, head=np.frombuffer(json.dumps(head, sort_keys=True).encode(), np.uint8),
                 xy=self.xy, flux=self.flux, support=self.support, sigma=self.spot_sigma())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "") -> "Reference":
        try:
            z = np.load(io.BytesIO(data), allow_pickle=False)
            head = json.loads(bytes(z["head"]).decode())
            if head.get("format") != REF_FORMAT:
                raise ValueError(f"format {head.get('format')}")
            return cls(z["xy"], z["flux"], z["support"], int(head["width"]), int(head["height"]),
                       MatchParams.from_dict(head["params"]), int(head.get("captures", 1)), head.get("info", {}),
                       z["sigma"] if "sigma" in z.files else None, float(head.get("noise_scale", 1.0)))
        except (ValueError, KeyError, OSError) as e:
            raise MatchError(f"{source or 'reference'}: unreadable reference ({e})") from None
