"""Deploy a build to a board with mpremote, then confirm over the glint protocol what runs.

    from glint.fw.deploy import deploy
    r = deploy("/dev/ttyACM0", "xiao_esp32s3_sense")        # or socket://127.0.0.1:PORT
    print(r.summary())   # "copied 28 files (66727 bytes) ..." or "no change: 28 files up to date"

Steps (each mpremote step is one connection; ``dry_run`` prints them instead):
  1. build (glint.fw.build, cached);
  2. ``mpremote connect URL exec <state>``: MicroPython's .mpy ABI, working directory, the
     manifest (and file hashes with ``verify``) -> the plan (glint.fw.manifest);
  3. ``mpremote connect URL exec <prepare> + fs cp ... + fs cp manifest + reset``: folders,
     stale files out, interim manifest, changed files in, final manifest, reset
     (with no change only ``reset``: entering the REPL stopped the firmware);
  4. open the glint link, wait for ``info`` and check board and firmware version;
     optionally run the device self-test.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from glint.errors import DeviceError, LinkError, ToolError
from glint.fw import mpremote
from glint.fw.build import MANIFEST_PATH, Build, build
from glint.fw.manifest import DeviceState, Plan, make_plan, prepare_script, shadow_candidates, state_script
from glintcore import proto

_log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = 30.0  # a board re-enumerates on USB within a few seconds of a hard reset
CONFIRM_POLL_S = 0.3
RESET_MODES = ("hard", "none")


@dataclass
class DeployReport:
    url: str
    build: Build
    plan: Plan | None = None
    commands: list[str] = field(default_factory=list)
    dry_run: bool = False
    info: dict | None = None
    selftest: dict | None = None
    seconds: dict = field(default_factory=dict)  # phase -> seconds

    @property
    def copied(self) -> int:
        return len(self.plan.copy) if self.plan else 0

    def summary(self) -> str:
        b = self.build
        if self.dry_run:
            return f"dry run: {len(b.artifacts)} files ({b.total_bytes} bytes) of {b.board_id} fw {b.version} build {b.build_id}"
        p = self.plan
        if p is None:
            return f"nothing planned for {b.board_id} fw {b.version}; build {b.build_id}"
        if p.copy or p.remove:
            what = f"copied {len(p.copy)} files ({p.copy_bytes} bytes)"
            if p.remove:
                what += f", removed {len(p.remove)}"
            what += f", {len(p.unchanged)} unchanged (compared with {p.trusted})"
        elif p.changed:
            what = f"no file changed ({len(p.unchanged)} up to date); manifest updated"
        else:
            what = f"no change: nothing copied, {len(p.unchanged)} files up to date (compared with {p.trusted})"
        return f"{what}; build {b.build_id}"


def _log_cmd(report: DeployReport, cmd: mpremote.Command, echo) -> None:
    report.commands.append(str(cmd))
    if echo:
        echo(str(cmd))


def read_state(url: str, b: Build, verify: bool = False) -> DeviceState:
    """Ask the device (over mpremote) what is installed; stops the firmware until the next reset."""
    paths = sorted(set(b.files)) if verify else None
    return DeviceState.from_json(_answer(mpremote.query(url, state_script(paths, shadow_candidates(b)))))


def _answer(obj: object) -> dict:
    """The device's JSON answer to the state script, which is an object (ToolError otherwise)."""
    if not isinstance(obj, dict):
        raise ToolError(f"the device answered the state query with {type(obj).__name__}, not an object")
    return obj


def install_command(url: str, plan: Plan, manifest_file, reset: str) -> mpremote.Command:
    """The one mpremote invocation that installs ``plan`` (and resets)."""
    cmd = mpremote.Command(url)
    if plan.changed:
        cmd.add("exec", prepare_script(plan.dirs, plan.remove, plan.interim_manifest()))
        by_dir: dict[str, list[str]] = {}
        for a in plan.copy:
            parent = a.dest.rsplit("/", 1)[0]
            by_dir.setdefault(parent, []).append(str(a.path))
        for parent, files in by_dir.items():
            # Relative to the install root (the board's working directory), as a folder:
            # mpremote then never stats the new file itself (the WebAssembly port's errno
            # numbers differ from the ones mpremote understands).
            cmd.add("fs", "cp", *files, ":" + (parent.lstrip("/") or ".") + "/")
        cmd.add("fs", "cp", str(manifest_file), ":" + MANIFEST_PATH.lstrip("/"))
    if reset == "hard":
        cmd.add("reset")
    return cmd


def wait_for_firmware(url: str, timeout: float = CONFIRM_TIMEOUT_S) -> dict:
    """Open the glint link and return ``info`` once the firmware answers (LinkError after ``timeout``)."""
    from glint.link import open_scanner
    from glint.link.scanner import Timeouts

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with open_scanner(url, Timeouts(request=2.0, retries=0)) as sc:
                return sc.info()
        except (LinkError, DeviceError) as e:
            last = e
            time.sleep(CONFIRM_POLL_S)
    raise LinkError(f"the firmware on {url} did not answer within {timeout:g} s after the reset"
                    + (f" ({last.oneline()})" if isinstance(last, LinkError | DeviceError) else ""),
                    hint="open the REPL (mpremote connect PORT repl) and look for a traceback from main.py")


def check_version(info: dict, b: Build) -> None:
    """DeviceError unless the running firmware is the board and version just deployed."""
    if info.get("board") != b.board_id:
        raise DeviceError(f"the device reports board {info.get('board')!r}, deployed {b.board_id!r}",
                          hint="deploy with the right --board")
    if info.get("fw") != b.version:
        raise DeviceError(f"the device runs firmware {info.get('fw')!r}, deployed {b.version!r}",
                          hint="a stale file may shadow the new one: deploy again with --verify")


def deploy(url: str, board_id: str, mode: str = "mpy", *, force: bool = False, verify: bool = False,
           dry_run: bool = False, reset: str = "hard", confirm: bool = True, selftest: bool = False,
           out_dir=None, echo=None, unlock_key: int | None = None, home=None) -> DeployReport:
    """Install ``board_id``'s firmware on the board at ``url`` (see the module docstring).

    ``echo(str)`` receives each mpremote command line as it is run (or, with
    ``dry_run``, instead of running it). A provisioned (locked) scanner is unlocked for the
    REPL first with the maintainer key of ``home`` (glint.unlock; docs/security.md), or with
    ``unlock_key`` when given; a scanner that cannot be unlocked stops the deploy before
    mpremote with one line. Raises UsageError, LinkError, DeviceError, ToolError.
    """
    if reset not in RESET_MODES:
        raise ToolError(f"unknown reset mode {reset!r}", hint="hard or none")
    t0 = time.monotonic()
    b = build(board_id, mode, out_dir)
    report = DeployReport(url, b, dry_run=dry_run)
    report.seconds["build"] = time.monotonic() - t0
    shadows = shadow_candidates(b)
    state_cmd = mpremote.Command(url).add("exec", state_script(sorted(b.files) if verify else None, shadows))
    if dry_run:
        # No device contact: show the state query and the full install it would lead to on a blank board.
        _log_cmd(report, state_cmd, echo)
        plan = make_plan(b, DeviceState(), force=True)
        report.plan = plan
        _log_cmd(report, install_command(url, plan, _manifest_file(b), reset), echo)
        return report
    unlock_for_repl(url, unlock_key, home)
    t = time.monotonic()
    report.commands.append(str(state_cmd))
    state = DeviceState.from_json(_answer(mpremote.query(url, state_cmd.steps[0][1])))
    report.seconds["query"] = time.monotonic() - t
    problem = state.mpy_problem(b)
    if problem:
        raise ToolError(problem, hint="flash MicroPython >= 1.22 on the board, or deploy sources with --py")
    if not state.native_ok(b) and any(a.native for a in b.artifacts):
        _log.warning("the device cannot run the %s native modules; the firmware falls back to the pure-Python twins",
                     b.arch)
    plan = make_plan(b, state, force=force)
    report.plan = plan
    manifest_file = _manifest_file(b)
    cmd = install_command(url, plan, manifest_file, reset)
    t = time.monotonic()
    if cmd:
        _log_cmd(report, cmd, echo)
        mpremote.run(cmd)
    report.seconds["install"] = time.monotonic() - t
    if confirm and reset != "none":
        t = time.monotonic()
        report.info = wait_for_firmware(url)
        check_version(report.info, b)
        if selftest:
            from glint.link import open_scanner

            with open_scanner(url) as sc:
                report.selftest = sc.selftest()
        report.seconds["confirm"] = time.monotonic() - t
    report.seconds["total"] = time.monotonic() - t0
    return report


UNLOCK_TIMEOUTS_S = 2.0  # a board without glint firmware does not answer; do not wait long


def unlock_for_repl(url: str, key: int | None = None, home=None) -> None:
    """Unlock a locked glint scanner at ``url`` for this boot (glint.unlock.unlock_for with ``home``'s
    maintainer key, or ``key``); a board without glint firmware (blank MicroPython) is left alone."""
    from glint.link import Timeouts, open_scanner

    try:
        sc = open_scanner(url, Timeouts(request=UNLOCK_TIMEOUTS_S, retries=0))
    except (LinkError, DeviceError):
        _log.debug("no glint firmware answering at %s: nothing to unlock", url)
        return
    with sc:
        try:
            info = sc.info(refresh=True)
        except (LinkError, DeviceError) as e:
            _log.debug("no glint answer at %s (%s): nothing to unlock", url, e)
            return
        if not info.get("locked"):
            return
        if key is None:
            from glint.unlock import unlock_for

            unlock_for(sc, home, "the REPL that mpremote needs")
            return
        try:
            sc.unlock(key)
        except DeviceError as e:
            if getattr(e, "status", None) == proto.ST_LOCKED:
                raise DeviceError(f"the scanner at {url} is locked and refused this home's maintainer key",
                                  "deploy from the home that provisioned it, or hold its button while it boots") from None
            raise
        _log.info("unlocked the scanner at %s with the maintainer key", url)


def _manifest_file(b: Build):
    path = b.out_dir.parent / f"manifest-{b.mode}.json"
    text = json.dumps(b.manifest(), sort_keys=True, separators=(",", ":"))
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def selftest_verdict(result: dict) -> tuple[bool, list[str]]:
    """(passed, one line per part). A device without a key yet passes: provisioning comes next."""
    lines = []
    ok = True
    for part in ("camera", "frame", "key", "storage"):
        r = result.get(part) or {}
        good = bool(r.get("ok"))
        detail = r.get("detail", "")
        if part == "key" and not good and "no key" in str(detail):
            lines.append(f"  {part:8s} not provisioned (glint fw provision PORT)")
            continue
        if part == "frame" and good:
            q = r.get("quality") or {}
            detail = f"min {r.get('min')} max {r.get('max')} spots {q.get(0, q.get('0', '?'))}"
        if part == "camera" and good:
            exp, gain = r.get("exposure_us"), r.get("gain_db")
            detail += " %s, exposure %s, gain %s" % (
                r.get("sensor", "?"), f"{exp} us" if exp is not None else r.get("exposure", "?"),
                f"{gain} dB" if gain is not None else "n/a")
        if part == "storage" and good:
            detail = f"free {r.get('free')} bytes, spool {r.get('spool')}"
        lines.append(f"  {part:8s} {'ok' if good else 'FAILED'} {detail}".rstrip())
        ok = ok and good
    return ok, lines


__all__ = ["deploy", "DeployReport", "read_state", "install_command", "wait_for_firmware", "check_version",
           "selftest_verdict", "RESET_MODES"]
