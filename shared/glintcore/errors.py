"""One error hierarchy for the wire contract, portable to MicroPython.

Every error carries a one-line message and an optional hint; the host's
error classes (glint.errors) derive from GlintError too.
"""


class GlintError(Exception):
    """Base of every error glint raises on purpose (bad input, bad device answers)."""

    hint = None

    def __init__(self, msg, hint=None):
        super().__init__(msg)
        self.msg = msg
        if hint is not None:
            self.hint = hint

    def __str__(self):
        return self.msg

    def oneline(self):
        if self.hint:
            return self.msg + " (hint: " + self.hint + ")"
        return self.msg


class DecodeError(GlintError):
    """Ill-formed or invalid encoded data (CBOR, frames, descriptors, COSE structures)."""


class FrameError(DecodeError):
    """A link frame was corrupt, oversize or truncated; ``status`` is the glintcore.proto code."""

    def __init__(self, msg, status=1, hint=None):
        super().__init__(msg, hint)
        self.status = status


class CryptoError(GlintError):
    """A key, signature or curve point was invalid, or a signature did not verify."""


class ProtocolError(GlintError):
    """A message was well-formed but not valid for the protocol (unknown type, bad state)."""


class BoardError(GlintError):
    """A board description (boards/<id>/board.json) that the firmware must not run with."""
