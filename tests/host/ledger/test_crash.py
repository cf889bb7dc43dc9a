"""Crash safety: a writer killed with SIGKILL in the middle of appends loses no acked event.

Two writers: batched commits from one thread, and group commit from several threads.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glint.ledger import Keys, Ledger, verify_consistency
from glint.ledger.note import open_checkpoint

WRITER = Path(__file__).with_name("crash_writer.py")
ACKS_BEFORE_KILL = 12
ROUNDS = 3


def _run_and_kill(path: Path, home: Path, rng: random.Random, mode: str) -> tuple[dict[int, str], int]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(WRITER), str(path), str(home), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    acked: dict[int, str] = {}
    ckpt = 0
    try:
        while len(acked) < ACKS_BEFORE_KILL:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            kind, *rest = line.split()
            if kind == "ack":
                acked[int(rest[0])] = rest[1]
            else:
                ckpt = int(rest[0])
        time.sleep(rng.uniform(0, 0.02))  # land somewhere inside the next batch
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # Complete lines written before the kill are acks too. The kill may cut the last
    # line short (print writes text and newline separately): an unterminated line was
    # never fully acknowledged, so it does not count.
    for line in proc.stdout.read().splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        kind, *rest = line.split()
        if kind == "ack":
            acked[int(rest[0])] = rest[1]
        elif kind == "ckpt":
            ckpt = int(rest[0])
    return acked, ckpt


@pytest.mark.parametrize("mode", ["batch", "group"])
def test_sigkill_during_appends(tmp_path, mode):
    path, home = tmp_path / "ledger.db", tmp_path / "home"
    rng = random.Random(7)
    for _round in range(ROUNDS):
        acked, ckpt_size = _run_and_kill(path, home, rng, mode)
        keys = Keys.load(home)
        with Ledger.open(path, keys=keys) as led:
            assert led.size > max(acked)
            for idx, h in acked.items():
                assert led.event(idx).hash.hex() == h
            rep = led.verify()
            assert rep.ok, rep.problem
            cp_row = led.store.latest_checkpoint()
            if cp_row is None:
                # group mode: the kill can land before the first checkpoint was signed
                assert ckpt_size == 0
            else:
                assert cp_row.size >= ckpt_size
                cp = open_checkpoint(cp_row.note, keys.log_verifier())
                proof = led.prove_consistency(cp.size, led.size) if cp.size < led.size else []
                verify_consistency(cp.size, led.size, proof, cp.root, led.root())
            led.checkpoint()  # the log still signs: consistent with the last checkpoint
        # The next round restarts a writer on the same ledger and kills it again.
