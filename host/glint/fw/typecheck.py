"""Type-check the firmware against the MicroPython stubs of each board's port (mypy).

    from glint.fw.typecheck import check
    findings = check("openmv_rt1062")      # [] when glintfw, glintcore and the board's board.py
                                           # only use what that port's MicroPython provides

The stubs are the ``micropython-<port>-stubs`` packages (PyPI, pinned in STUBS). They
cannot share one site-packages (each ships its own machine.pyi, and a requests/ stub
package), so each port gets its own folder under build/stubs/, installed on first use
with ``pip install --target`` (``install_stubs``; tools/fw_stubs.py does it ahead of time).
mypy then runs with that folder as typeshed and MYPYPATH, without CPython's site-packages.

Function bodies are checked although unannotated (check_untyped_defs). Only findings in
glint's own files count (the stubs themselves have a few errors), only of the kinds in
PORT_API_CODES, and ALLOWED lists the deliberate ones, each with its reason.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from glint.errors import ToolError
from glint.fw.build import load_board, repo_root, ships_to
from glint.resources import build_dir

_log = logging.getLogger(__name__)

STUBS = {  # stub flavour -> pinned package (pip index versions micropython-<x>-stubs)
    "esp32": "micropython-esp32-stubs==1.29.0.post1",
    "stm32": "micropython-stm32-stubs==1.29.0.post1",
    "mimxrt": "micropython-mimxrt-stubs==1.26.1.post1",  # the newest published for i.MX RT
    "webassembly": "micropython-webassembly-stubs==1.29.0.post1",
}
MYPY_TIMEOUT_S = 120
PIP_TIMEOUT_S = 300

# Vendor modules outside MicroPython's own stubs (camera drivers, the virtual scanner bridge).
VENDOR_MODULES = ("camera", "csi", "sensor", "simhost")

# What this check is for: names, attributes, modules and call signatures the port's MicroPython
# lacks. Other mypy codes (Optional narrowing, inferred container types) are about annotations
# glint's portable code deliberately does not have.
PORT_API_CODES = frozenset({"attr-defined", "name-defined", "import-not-found", "import-untyped", "call-arg"})

# (stub flavour or "*", file suffix, error code, text in the message): deliberate, with the reason.
ALLOWED = [
    # CPython-runtime fallbacks behind getattr()/try guards (virtual scanner --runtime cpython)
    ("*", "glintfw/app.py", "attr-defined", '"monotonic"'),
    ("*", "glintfw/indicate.py", "attr-defined", '"monotonic"'),
    ("*", "glintfw/link.py", "attr-defined", '"monotonic"'),
    ("*", "glintfw/store.py", "attr-defined", '"O_RDONLY"'),
    # OpenMV boards try machine.LED (OpenMV firmware) and fall back to pyb.LED
    ("stm32", "glintfw/board_openmv.py", "attr-defined", '"LED"'),
    # the viper pointer types are compiler built-ins the 1.26 i.MX RT stubs do not declare
    ("mimxrt", "glintfw/detect_viper.py", "name-defined", '"ptr8"'),
    ("mimxrt", "glintfw/detect_viper.py", "name-defined", '"ptr32"'),
    ("stm32", "glintfw/keystore.py", "import-not-found", '"esp32"'),  # NVS key store: only on keystore "nvs" boards
    ("mimxrt", "glintfw/keystore.py", "import-not-found", '"esp32"'),
    ("webassembly", "glintfw/keystore.py", "import-not-found", '"esp32"'),
    ("webassembly", "glintfw/keystore.py", "import-not-found", '"machine"'),  # real boards only
    ("webassembly", "glintfw/link.py", "import-not-found", '"machine"'),  # soft reset on real boards
    # ESP-IDF log level while glint owns the console: the esp module exists on ESP32 only
    ("stm32", "glintfw/link.py", "import-not-found", '"esp"'),
    ("mimxrt", "glintfw/link.py", "import-not-found", '"esp"'),
    ("webassembly", "glintfw/link.py", "import-not-found", '"esp"'),
    ("mimxrt", "glintfw/board_openmv.py", "import-not-found", '"pyb"'),  # fallback: older OpenMV, no machine.LED
    # the USB drive is hidden through pyb.usb_mode on the OpenMV STM32 boards only (board.json usb_drive)
    ("esp32", "glintfw/usbdrive.py", "import-not-found", '"pyb"'),
    ("mimxrt", "glintfw/usbdrive.py", "import-not-found", '"pyb"'),
    ("webassembly", "glintfw/usbdrive.py", "import-not-found", '"pyb"'),
    # the WebAssembly port has binascii.crc32 (the stubs miss it); both files fall back if absent
    ("webassembly", "glintfw/store.py", "attr-defined", '"crc32"'),
    ("webassembly", "glintcore/frame.py", "attr-defined", '"crc32"'),
]

_CONFIG = """\
[mypy]
# glint's portable code avoids annotations (MicroPython), so inferred-type nits are not findings
check_untyped_defs = True
disable_error_code = var-annotated, assignment
[mypy-%(vendor)s]
ignore_missing_imports = True
[mypy-glintcore]
# the package __init__ installs a const() shim on CPython only
ignore_errors = True
"""

_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<msg>.*?)(?:  \[(?P<code>[a-z-]+)\])?$")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message} [{self.code}]"


def flavour(board: dict) -> str:
    """Which stub package describes a board's MicroPython."""
    port, mcu = board.get("port"), str(board.get("mcu", ""))
    if port == "esp32":
        return "esp32"
    if port == "sim":
        return "webassembly"
    if port == "openmv":
        if "STM32" in mcu:
            return "stm32"
        if "i.MX RT" in mcu or "RT10" in mcu:
            return "mimxrt"
    raise ToolError(f"no MicroPython stubs known for board {board.get('id')} (port {port}, mcu {mcu})",
                    hint="add its flavour to glint.fw.typecheck.flavour")


def stubs_dir(name: str) -> Path:
    """Where the stubs of ``name`` live: $GLINT_STUBS_DIR or build/stubs of this checkout."""
    base = os.environ.get("GLINT_STUBS_DIR")
    return (Path(base) if base else build_dir() / "stubs") / STUBS[name].replace("==", "-")


def install_stubs(name: str) -> Path:
    """The stub folder for ``name``, installed with pip on first use (ToolError if pip fails)."""
    d = stubs_dir(name)
    if (d / "stdlib" / "VERSIONS").is_file():
        return d
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
           "--target", str(d), STUBS[name]]
    _log.info("installing %s into %s", STUBS[name], d)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ToolError(f"pip timed out installing {STUBS[name]}") from None
    if r.returncode != 0 or not (d / "stdlib" / "VERSIONS").is_file():
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise ToolError(f"cannot install {STUBS[name]}: {last}", hint="needs network access to PyPI once")
    return d


def check(board_id: str, root: Path | None = None) -> list[Finding]:
    """mypy over the glintfw a board ships, glintcore and its board.py with its port's stubs -> unallowed findings."""
    try:
        import mypy  # noqa: F401
    except ImportError:
        raise ToolError("mypy is not installed", hint="pip install -e '.[test]'") from None
    root = root or repo_root()
    board = load_board(board_id, root)
    name = flavour(board)
    stubs = install_stubs(name)
    work = build_dir() / "typecheck"
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "mypy.ini"
    cfg.write_text(_CONFIG % {"vendor": ",".join(VENDOR_MODULES)})
    env = dict(os.environ, MYPYPATH=os.pathsep.join(
        str(p) for p in (stubs, root / "firmware", root / "shared", root / "boards" / board_id)))
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(cfg), "--custom-typeshed-dir", str(stubs),
           "--no-site-packages", "--cache-dir", str(work / f"cache-{name}"), "--no-error-summary",
           "--show-error-codes", "--no-pretty", "-p", "glintcore", "-m", "board"]
    for p in sorted((root / "firmware" / "glintfw").glob("*.py")):  # another port family's board support: not here
        if ships_to(f"glintfw/{p.name}", board.get("port")):
            cmd += ["-m", "glintfw" if p.stem == "__init__" else f"glintfw.{p.stem}"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=MYPY_TIMEOUT_S, env=env, cwd=str(root))
    except subprocess.TimeoutExpired:
        raise ToolError(f"mypy timed out on {board_id}") from None
    if r.returncode not in (0, 1):
        raise ToolError(f"mypy failed on {board_id}: {(r.stderr or r.stdout).strip()[-300:]}")
    ours = (str(root / "firmware"), str(root / "shared"), str(root / "boards"), "firmware/", "shared/", "boards/")
    out = []
    for line in r.stdout.splitlines():
        m = _LINE.match(line)
        if not m or not m.group("path").startswith(ours):
            continue
        path = os.path.relpath(m.group("path"), root) if os.path.isabs(m.group("path")) else m.group("path")
        f = Finding(path, int(m.group("line")), m.group("code") or "", m.group("msg"))
        if f.code in PORT_API_CODES and not _allowed(name, f):
            out.append(f)
    return out


def _allowed(name: str, f: Finding) -> bool:
    return any(fl in (name, "*") and f.path.endswith(suffix) and f.code == code and text in f.message
               for fl, suffix, code, text in ALLOWED)


__all__ = ["check", "install_stubs", "flavour", "Finding", "STUBS", "ALLOWED", "PORT_API_CODES"]
