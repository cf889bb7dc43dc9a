"""Putting the next object under a real scanner: the operator at a prompt, or a feeder hook command.

    place = prompt_placer()                       # "place ... and press Enter" on stderr, answer on stdin
    place = feeder_placer("robot-arm --bin $GLINT_ITEM")   # runs once per object, must exit 0
    place(Placement(item="acme:BAG-1", what="row 3", env={"GLINT_ROW": "3"}))

A placer returns normally when the object is in place; it raises ``Skip`` (the operator typed
``s``) or ``StopRun`` (``q``, or stdin closed) or UsageError (the feeder failed). Virtual
scanners do not need one: their lens is set from the manifest (glint.bench.virtual).
Several scanner threads share one terminal: prompts are serialized by a lock.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable

from glint.errors import GlintError, UsageError

FEEDER_TIMEOUT_S = 120.0
_PROMPT_LOCK = threading.Lock()


class Skip(GlintError):
    """The operator skipped this object."""


class StopRun(GlintError):
    """The operator stopped the run (or stdin closed)."""


@dataclass
class Placement:
    """What to put under the lens: ``item`` (expected id or None), ``what`` (how the prompt names it)."""

    item: str | None
    what: str
    scanner: str = ""
    env: dict = field(default_factory=dict)


Placer = Callable[[Placement], None]


def prompt_placer(stdin=None, stdout=None) -> Placer:
    """Ask the operator to place each object; Enter scans, ``s`` skips, ``q`` stops."""

    def place(p: Placement) -> None:
        inp, out = stdin or sys.stdin, stdout or sys.stderr
        where = f" on {p.scanner}" if p.scanner else ""
        label = p.item or "the next object"
        with _PROMPT_LOCK:
            out.write(f"place {label} ({p.what}) under the scanner{where}, then Enter (s: skip, q: stop): ")
            out.flush()
            line = inp.readline()
        if not line:
            raise StopRun("no answer: stdin is closed", "run it at a terminal, or pass --feeder CMD or --yes")
        answer = line.strip().lower()
        if answer in ("s", "skip"):
            raise Skip(f"skipped by the operator ({p.what})")
        if answer in ("q", "quit", "stop"):
            raise StopRun("stopped by the operator")

    return place


def feeder_placer(command: str, timeout: float = FEEDER_TIMEOUT_S) -> Placer:
    """Run ``command`` (a shell-free argv, split like a shell would) before each object.

    It gets GLINT_ITEM, GLINT_WHAT, GLINT_SCANNER and the placement's own variables in its
    environment and must exit 0 once the object is in place.
    """
    argv = shlex.split(command)
    if not argv:
        raise UsageError("the feeder command is empty", "give --feeder CMD")

    def place(p: Placement) -> None:
        env = dict(os.environ, GLINT_ITEM=p.item or "", GLINT_WHAT=p.what, GLINT_SCANNER=p.scanner,
                   **{k: str(v) for k, v in p.env.items()})
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise UsageError(f"feeder command {argv[0]!r} not found", "give --feeder a command on PATH") from None
        except subprocess.TimeoutExpired:
            raise UsageError(f"feeder command timed out after {timeout:.0f} s ({p.what})") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            raise UsageError(f"feeder command exited {proc.returncode} ({p.what})"
                             + (f": {tail[-1][:200]}" if tail else ""))

    return place


def no_placer(p: Placement) -> None:
    """--yes: the objects are placed by other means; scan at once."""


def choose_placer(feeder: str | None, yes: bool) -> Placer:
    """The placer for a real scanner: --feeder CMD, --yes, else the prompt (stdin; a closed one stops)."""
    if feeder:
        return feeder_placer(feeder)
    if yes:
        return no_placer
    return prompt_placer()


__all__ = ["Placement", "Placer", "Skip", "StopRun", "prompt_placer", "feeder_placer", "no_placer",
           "choose_placer"]
