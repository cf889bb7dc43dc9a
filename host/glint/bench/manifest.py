"""Bench manifests: which items a batch scans, and what each scan should give.

CSV (header row) or JSON (a list of objects, or {"items": [...]}). Columns/keys:

    item     expected item id (empty: identify-only, any enrolled item or none is reported)
    mode     "verify" (1:1 against ``item``) or "identify" (1:N); default verify when
             ``item`` is given, identify otherwise
    expect   "pass" (default) or "fail" (a counterfeit or an unenrolled object)
    lens     virtual scanners only: what to put under the lens, "item" / "counterfeit" /
             "empty", with ``seed`` (the coating's seed) and ``capture`` (capture seed)
    note     free text copied to the report

``identify_only(n)`` makes a manifest of ``n`` identify rows without expectations.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from glint.errors import UsageError

MODES = ("verify", "identify")
EXPECTS = ("pass", "fail", "")
MAX_ITEMS = 1_000_000
KNOWN = {"item", "mode", "expect", "lens", "seed", "capture", "note"}


@dataclass
class BenchItem:
    """One row of a batch: ``n`` its position (0-based), ``lens`` a dict for a virtual scanner or None."""

    n: int
    item: str | None
    mode: str
    expect: str
    lens: dict | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def _row(n: int, raw: dict, where: str) -> BenchItem:
    raw = {str(k).strip().lower(): v for k, v in raw.items() if k is not None}
    get = lambda k: ("" if raw.get(k) is None else str(raw.get(k))).strip()  # noqa: E731
    item = get("item") or None
    mode = get("mode").lower() or ("verify" if item else "identify")
    if mode not in MODES:
        raise UsageError(f"{where}: mode {mode!r} is not verify or identify")
    if mode == "verify" and not item:
        raise UsageError(f"{where}: verify needs an item id")
    expect = get("expect").lower() or ("pass" if item else "")
    if expect not in EXPECTS:
        raise UsageError(f"{where}: expect {expect!r} is not pass or fail")
    lens = None
    if get("lens") or get("seed"):
        try:
            lens = {"lens": get("lens") or "item", "item_seed": int(get("seed") or 1),
                    "capture_seed": int(get("capture") or n + 1)}
        except ValueError:
            raise UsageError(f"{where}: seed and capture must be integers") from None
    extra = {k: v for k, v in raw.items() if k not in KNOWN}
    return BenchItem(n, item, mode, expect, lens, get("note"), extra)


def load_manifest(path: str | Path) -> list[BenchItem]:
    """Rows of a CSV or JSON manifest (by extension; JSON if the text starts with [ or {)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise UsageError(f"cannot read manifest {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not a text manifest (not UTF-8 at byte {e.start})",
                         hint="give a CSV or JSON file") from None
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise UsageError(f"{path}: not valid JSON ({str(e) or 'nested too deeply'})") from None
        if isinstance(data, dict):
            data = data.get("items")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise UsageError(f"{path}: expected a list of objects (or {{\"items\": [...]}})")
        rows = data
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "item" not in [f.strip().lower() for f in reader.fieldnames]:
            raise UsageError(f"{path}: CSV needs a header row with an 'item' column")
        rows = list(reader)
    if len(rows) > MAX_ITEMS:
        raise UsageError(f"{path}: {len(rows)} rows, more than {MAX_ITEMS}")
    if not rows:
        raise UsageError(f"{path}: the manifest has no rows")
    return [_row(i, r, f"{path.name} row {i + 1}") for i, r in enumerate(rows)]


def identify_only(n: int) -> list[BenchItem]:
    if n <= 0:
        raise UsageError("identify-only batches need a positive count")
    return [BenchItem(i, None, "identify", "") for i in range(n)]
