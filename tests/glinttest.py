"""Helpers shared by the test suite (importable as ``glinttest`` from any test module)."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VECTORS = Path(os.environ.get("GLINT_VECTORS", REPO.parent / "shared" / "vectors"))


def load_vector(name: str):
    """A JSON file from the shared test vectors (../shared/vectors)."""
    return json.loads((VECTORS / name).read_text())
