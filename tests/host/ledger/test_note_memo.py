"""The verifier's memo of checked notes saves time and never accepts what did not verify."""

from __future__ import annotations

import pytest

from glint import crypto
from glint.errors import VerificationError
from glint.ledger.note import Signer, Verifier, open_note


def test_memo_remembers_successes_only():
    s = Signer.generate("example.com/log")
    v = Verifier(s.vkey())
    note = s.sign("hello\n")
    assert open_note(note, v) == "hello\n"
    assert open_note(note, v) == "hello\n"  # served from the memo
    bad = note.replace("hello", "hellp")
    for _ in range(2):  # a failure is not remembered, and never becomes a success
        with pytest.raises(VerificationError, match="does not verify"):
            open_note(bad, v)


def test_vouch_only_for_the_same_key():
    s, other = Signer.generate("example.com/log"), Signer.generate("example.com/log")
    v = Verifier(s.vkey())
    msg = b"text\n"
    forged = crypto.ed25519_sign(other._seed, msg)
    v.vouch(msg, forged, other)  # another key's signature is not vouched for
    assert not v.verify(msg, forged)
    note = s.sign("text\n", vouch_to=v)
    assert open_note(note, v) == "text\n"
    assert open_note(note, Verifier(s.vkey())) == "text\n"  # a fresh verifier checks it for real
