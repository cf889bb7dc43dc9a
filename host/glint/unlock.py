"""Unlocking a provisioned (locked) scanner before a step that needs it open (docs/security.md).

A provisioned scanner refuses the REPL handover and forced re-keying until it is unlocked
for the boot: by a challenge signed with the maintainer key of the home that provisioned it
(``<home>/keys/maintainer.key``, glint.keys.maintainer_key), or by its button held at boot.
Every command that needs the REPL (``glint fw deploy``, ``fw provision``) or forced
re-keying (``device provision --force``, ``fw provision --rekey``) calls :func:`unlock_for`
first, so a locked scanner either opens with this home's key or the command stops with one
line saying why, before anything is half done:

- provisioned without a maintainer key: only the button at boot opens it;
- this home has no maintainer key: run from the home that provisioned it, or the button;
- the scanner refuses this home's key (another home provisioned it): the same.
"""

from __future__ import annotations

import logging
from pathlib import Path

from glint.errors import DeviceError, UsageError
from glintcore import proto

_log = logging.getLogger(__name__)

BUTTON_HINT = "or hold the scanner's button while it boots (physical presence unlocks that boot)"


def unlock_for(scanner, home: str | Path | None, why: str) -> bool:
    """Unlock ``scanner`` with ``home``'s maintainer key if it is locked; True if it was.

    ``why`` names the step that needs it (\"the REPL for fw deploy\"). Raises UsageError when
    the home has no maintainer key or the scanner has none, DeviceError when the scanner
    refuses this home's key; each one line with a hint.
    """
    from glint.home import Home
    from glint.keys import MAINTAINER_FILE, maintainer_key

    info = scanner.info(refresh=True)
    if not info.get("locked"):
        return False
    did = bytes(info.get("device_id") or b"").hex() or "?"
    if not info.get("maintainer"):
        raise UsageError(f"scanner {did} is locked and was provisioned without a maintainer key: {why} needs it "
                         "unlocked", "hold the scanner's button while it boots (physical presence unlocks that boot)")
    root = Home(home).root
    key = maintainer_key(root, create=False)
    if key is None:
        raise UsageError(f"scanner {did} is locked and this home has no maintainer key ({root / 'keys' / MAINTAINER_FILE}):"
                         f" {why} needs it unlocked", f"run from the home that provisioned it (--home), {BUTTON_HINT}")
    try:
        scanner.unlock(key)
    except DeviceError as e:
        if getattr(e, "status", None) == proto.ST_LOCKED:
            raise DeviceError(f"scanner {did} is locked and refused this home's maintainer key ({root}): another home "
                              f"provisioned it; {why} needs it unlocked",
                              f"run from the home that provisioned it (--home), {BUTTON_HINT}") from None
        raise
    _log.info("unlocked scanner %s with the maintainer key of %s for %s", did, root, why)
    return True
