"""The host's error hierarchy: one base (glintcore's GlintError), one-line messages with hints.

The CLI prints ``glint: <message>`` (plus the hint) and exits non-zero; the
library raises these for bad input or bad device answers, never for bugs.
"""

from glintcore.errors import CryptoError, DecodeError, FrameError, GlintError, ProtocolError

__all__ = [
    "GlintError", "DecodeError", "FrameError", "CryptoError", "ProtocolError",
    "UsageError", "VerificationError", "LinkError", "DeviceError", "MatchError",
    "LedgerError", "ToolError",
]


class UsageError(GlintError):
    """Bad command-line input: a missing file, a malformed key, an unknown item."""


class VerificationError(GlintError):
    """A signature, proof, certificate or chain did not verify (fails closed, says why)."""


class LinkError(GlintError):
    """The link to a scanner failed: port missing, unplugged, timeout."""


class DeviceError(GlintError):
    """A scanner answered with an error status or an unexpected message; ``status`` and ``body``
    are the answer's (glintcore.proto ST_*), when there was one."""

    status: int | None = None
    body: object = None


class MatchError(GlintError):
    """Matching could not run: empty database, unknown item, poor reference."""


class LedgerError(GlintError):
    """The ledger's storage is unusable or inconsistent."""


class ToolError(GlintError):
    """An external tool (node, mpy-cross, mpremote) is missing or failed."""
