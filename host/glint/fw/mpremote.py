"""Run mpremote (the official MicroPython tool) as a subprocess, one chained command per step.

A deploy is a handful of mpremote invocations, each one connection (``connect URL``)
followed by commands chained with ``+``; the same argument lists are what
``--dry-run`` prints, so what you read is what would run. URLs are anything pyserial
opens: /dev/ttyACM0, COM3, socket://127.0.0.1:PORT (the virtual scanner).

Entering the raw REPL interrupts the glint firmware: mpremote's ``\\r\\x03`` between
frames makes the protocol loop hand the console back to MicroPython (glintfw.link).
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys

from glint.errors import LinkError, ToolError

_log = logging.getLogger(__name__)

RUN_TIMEOUT_S = 300.0  # one chained invocation (a full deploy to a slow UART board fits easily)
QUERY_TIMEOUT_S = 60.0
MARKER = "GLINT-JSON:"  # prefix of the one line a device-side script prints for us
PROGRAM = "mpremote"  # shown in dry runs; executed as ``python -m glint.fw.mpremote_main`` (mpremote with TCP_NODELAY)


class Command:
    """One mpremote invocation: ``mpremote connect URL <cmd> + <cmd> ...``."""

    def __init__(self, url: str):
        self.url = url
        self.steps: list[list[str]] = []

    def add(self, *args: str) -> "Command":
        self.steps.append([str(a) for a in args])
        return self

    def argv(self) -> list[str]:
        out = ["connect", self.url]
        for i, step in enumerate(self.steps):
            if i:
                out.append("+")
            out.extend(step)
        return out

    def __str__(self) -> str:
        return shlex.join([PROGRAM] + self.argv())

    def __bool__(self) -> bool:
        return bool(self.steps)


def run(cmd: Command, timeout: float = RUN_TIMEOUT_S) -> str:
    """Run ``cmd``; return its stdout. LinkError when the board cannot be reached, ToolError otherwise."""
    argv = [sys.executable, "-m", "glint.fw.mpremote_main"] + cmd.argv()
    _log.debug("running %s", cmd)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ToolError("mpremote is not installed", hint="pip install -e . (it depends on mpremote)") from None
    except subprocess.TimeoutExpired:
        raise LinkError(f"mpremote on {cmd.url} did not finish within {timeout:g} s",
                        hint="is the board busy or stuck? press reset and retry") from None
    if r.returncode != 0:
        text = (r.stderr.strip() or r.stdout.strip() or f"exit status {r.returncode}").splitlines()
        last = text[-1] if text else ""
        if "failed to access" in last or "could not enter raw repl" in last.lower() or "no device" in last:
            raise LinkError(f"mpremote cannot use {cmd.url}: {last}",
                            hint="is the board plugged in and not held by another program (glint daemon, a terminal)?")
        raise ToolError(f"mpremote failed on {cmd.url}: {last}", hint="run again with -v to see the mpremote command")
    return r.stdout


def query(url: str, script: str, timeout: float = QUERY_TIMEOUT_S) -> object:
    """Run ``script`` on the device; it must print one line ``MARKER + json``; return the decoded JSON."""
    out = run(Command(url).add("exec", script), timeout)
    for line in out.splitlines():
        if line.startswith(MARKER):
            try:
                return json.loads(line[len(MARKER):])
            except ValueError as e:
                raise ToolError(f"unreadable answer from the device: {e}") from None
    raise ToolError(f"the device script printed no answer (got {out.strip()[:120]!r})",
                    hint="is this a MicroPython board? try 'mpremote connect PORT repl'")


__all__ = ["Command", "run", "query", "MARKER", "PROGRAM"]
