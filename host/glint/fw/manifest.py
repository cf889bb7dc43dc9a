"""The deploy manifest: what is installed on a device, and the plan that brings it to a build.

The device keeps ``/glint_fw.json`` (build.MANIFEST_PATH; not a dotfile, because the virtual
scanner, like some file managers, does not carry dotfiles across a reboot):
    {"format": 1, "board": "sim", "fw": "0.4.0", "build": "acc6cf74ec1e", "mode": "mpy",
     "files": {"/lib/glintcore/cbor.mpy": "<sha256 hex>", ...}}
A deploy reads it (one mpremote exec, ``state_script``), copies only the files whose hash
differs, deletes files an earlier deploy installed that this build no longer has, and
writes the new manifest last. Before copying, the manifest on the device is rewritten
without the entries being replaced, so an interrupted deploy never leaves a manifest
that vouches for a half-written file. ``--verify`` hashes the files on the device
instead of trusting the manifest (slower; catches files changed behind glint's back).

Paths in the manifest are absolute from the device's install root; the install root is
the working directory MicroPython boots in ("/" on ESP32 and the virtual scanner,
"/flash", or "/sdcard" when an SD card is mounted, on OpenMV), which is where main.py runs from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from glint.fw.build import ARCH_CODES, MANIFEST_PATH, MPY_VERSION, Artifact, Build
from glint.fw.mpremote import MARKER

MANIFEST_FORMAT = 1

_STATE = """\
import sys, os, json
def _glint_state(H, S):
    r = {"mpy": getattr(sys.implementation, "_mpy", 0), "platform": sys.platform,
         "impl": sys.implementation.name, "version": list(sys.implementation.version[:3]), "cwd": os.getcwd()}
    root = r["cwd"].rstrip("/")
    try:
        with open(root + %(manifest)r) as f:
            r["manifest"] = json.load(f)
    except Exception:
        r["manifest"] = None
    if H:
        import hashlib, binascii
        b = bytearray(512)
        m = memoryview(b)
        h = {}
        for p in H:
            try:
                s = hashlib.sha256()
                with open(root + p, "rb") as f:
                    while True:
                        n = f.readinto(b)
                        if not n:
                            break
                        s.update(m[:n])
                h[p] = binascii.hexlify(s.digest()).decode()
            except OSError:
                h[p] = None
        r["hashes"] = h
    e = []
    for p in S:
        try:
            os.stat(root + p)
            e.append(p)
        except OSError:
            pass
    r["shadows"] = e
    print(%(marker)r + json.dumps(r))
_glint_state(%(hash)r, %(shadow)r)
del _glint_state
"""

_PREPARE = """\
import os, json
def _glint_prepare(D, R, M):
    root = os.getcwd().rstrip("/")
    for d in D:
        try:
            os.mkdir(root + d)
        except OSError:
            pass
    for p in R:
        try:
            os.remove(root + p)
        except OSError:
            pass
    with open(root + %(manifest)r, "w") as f:
        f.write(M)
_glint_prepare(%(dirs)r, %(remove)r, %(interim)r)
del _glint_prepare
"""


def state_script(hash_paths: list[str] | None, shadow_paths: list[str]) -> str:
    """Device code that prints the manifest, MicroPython's .mpy ABI, cwd, optional hashes."""
    return _STATE % {"manifest": MANIFEST_PATH, "marker": MARKER, "hash": list(hash_paths or []),
                     "shadow": list(shadow_paths)}


def prepare_script(dirs: list[str], remove: list[str], interim: dict) -> str:
    """Device code that creates folders, deletes stale files and writes the interim manifest."""
    return _PREPARE % {"manifest": MANIFEST_PATH, "dirs": dirs, "remove": remove,
                       "interim": json.dumps(interim, sort_keys=True, separators=(",", ":"))}


def shadow_candidates(b: Build) -> list[str]:
    """Source files that would be imported instead of a deployed .mpy (MicroPython tries .py first)."""
    return [a.dest[:-4] + ".py" for a in b.artifacts if a.dest.endswith(".mpy")]


@dataclass
class DeviceState:
    """What the state script reported."""

    mpy: int = 0
    platform: str = ""
    impl: str = ""
    version: list = field(default_factory=list)
    cwd: str = "/"
    manifest: dict | None = None
    hashes: dict | None = None
    shadows: list = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: dict) -> "DeviceState":
        m = obj.get("manifest")
        if not (isinstance(m, dict) and m.get("format") == MANIFEST_FORMAT and isinstance(m.get("files"), dict)):
            m = None  # missing, unreadable or from another format: trust nothing
        return cls(int(obj.get("mpy") or 0), str(obj.get("platform", "")), str(obj.get("impl", "")),
                   list(obj.get("version") or []), str(obj.get("cwd") or "/"), m, obj.get("hashes"),
                   list(obj.get("shadows") or []))

    @property
    def micropython(self) -> str:
        return ".".join(str(v) for v in self.version) or "?"

    def mpy_problem(self, b: Build) -> str | None:
        """Why this device cannot load the build's .mpy files, or None."""
        if b.mode != "mpy" or not self.mpy:
            return None
        if self.mpy & 0xFF != MPY_VERSION:
            return (f"the board runs MicroPython {self.micropython} (.mpy v{self.mpy & 0xFF}); "
                    f"this mpy-cross writes v{MPY_VERSION} (MicroPython 1.22 or newer)")
        return None

    def native_ok(self, b: Build) -> bool:
        """True when the device can run the build's native (viper) modules."""
        arch = (self.mpy >> 10) & 0xF
        return not self.mpy or arch == ARCH_CODES.get(b.arch)


@dataclass
class Plan:
    """The difference between a device and a build."""

    build: Build
    state: DeviceState
    copy: list[Artifact]
    unchanged: list[Artifact]
    remove: list[str]
    dirs: list[str]
    trusted: str  # "manifest", "device hashes" or "nothing (no manifest)"

    @property
    def changed(self) -> bool:
        return bool(self.copy or self.remove) or self.state.manifest != self.build.manifest()

    @property
    def copy_bytes(self) -> int:
        return sum(a.size for a in self.copy)

    def interim_manifest(self) -> dict:
        """The manifest written before copying: only files that stay as they are."""
        m = dict(self.build.manifest())
        m["build"] = "partial"
        m["files"] = {a.dest: a.sha256 for a in self.unchanged}
        return m


def make_plan(b: Build, state: DeviceState, force: bool = False) -> Plan:
    """Which files to copy and remove to turn ``state`` into ``b``."""
    old_files = dict(state.manifest["files"]) if state.manifest else {}
    if state.hashes is not None:
        known, trusted = {p: h for p, h in state.hashes.items() if h}, "device hashes"
    elif state.manifest:
        known, trusted = old_files, "manifest"
    else:
        known, trusted = {}, "nothing (no manifest on the device)"
    if force:
        known, trusted = {}, "nothing (--force)"
    copy = [a for a in b.artifacts if known.get(a.dest) != a.sha256]
    unchanged = [a for a in b.artifacts if known.get(a.dest) == a.sha256]
    wanted = set(b.files)
    remove = sorted((set(old_files) - wanted) | (set(state.shadows) - wanted))
    dirs = sorted({_parent(a.dest) for a in copy} - {"/"}, key=lambda d: (d.count("/"), d))
    full: list[str] = []
    for d in dirs:  # every ancestor too, parents first
        parts = d.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            p = "/" + "/".join(parts[:i])
            if p not in full:
                full.append(p)
    return Plan(b, state, copy, unchanged, remove, full, trusted)


def _parent(dest: str) -> str:
    i = dest.rfind("/")
    return dest[:i] if i > 0 else "/"


__all__ = ["DeviceState", "Plan", "make_plan", "state_script", "prepare_script", "shadow_candidates",
           "MANIFEST_FORMAT"]
