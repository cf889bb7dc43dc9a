"""How glint comes back after MSG_RESET or from the REPL, per port (docs/protocol.md "Reset and wake").

board.json ``reset`` says what the port needs:

* ``soft`` (ESP32): the port runs main.py after every soft reset made in the friendly
  REPL mode (ports/esp32 main.c: ``if (pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL)
  pyexec_file_if_exists("main.py")``), so ``machine.soft_reset()`` and Ctrl-D bring
  glint back without dropping the USB port;
* ``hard`` (OpenMV firmware): main.py runs only on the first soft reset after a hard
  reset (openmv src/omv/ports/stm32/main.c and mimxrt/main.c, ``first_soft_reset``), so
  a soft reset or Ctrl-D leaves the board at its REPL; ``machine.reset()`` restarts the
  chip (the USB port drops and comes back) and main.py runs.

``wake_sequence(kind)`` is what a host sends to a scanner it finds at the REPL (friendly
or raw). It contains no ``\\r\\x03`` and no frame start byte (0x47 'G'), so a scanner
already in protocol mode drops it as noise between frames: it is safe to send blind.
"""

SOFT = "soft"
HARD = "hard"
KINDS = (SOFT, HARD)

# Ctrl-B leaves the raw REPL (a no-op in the friendly one); Ctrl-C, not preceded by CR, clears
# any half-typed line; then either Ctrl-D on the empty line (soft reset) or a typed hard reset.
_WAKE = {
    SOFT: b"\x02\x03\x04",
    HARD: b"\x02\x03import machine;machine.reset()\r",
}


def kind_of(cfg):
    """The board's reset kind from its board.json (``soft`` when it does not say)."""
    k = cfg.get("reset", SOFT)
    if k not in KINDS:
        raise ValueError("board.json reset must be 'soft' or 'hard', not %r" % (k,))
    return k


def wake_sequence(kind=HARD):
    """Bytes that bring glint back from the REPL on a port of ``kind`` (HARD works on every port)."""
    return _WAKE[kind]


def restart(kind, machine):
    """Restart the firmware the way the port needs, with the port's ``machine`` module (does not
    return on a real board; glintcore imports no hardware module itself)."""
    if kind == HARD:
        machine.reset()
    else:
        machine.soft_reset()
