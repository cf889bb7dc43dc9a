"""Signed notes and checkpoints: the C2SP vector byte for byte, Wycheproof Ed25519, tampering."""

from __future__ import annotations

import base64
import json

import pytest

from glint.errors import UsageError, VerificationError
from glint.ledger.note import Checkpoint, Signer, Verifier, key_id, open_checkpoint, open_note, sign_checkpoint


def test_signed_note_vector(vectors):
    v = json.loads((vectors / "signed_note_ed25519.json").read_text())
    s = Signer.from_skey(v["signer_key"])
    assert s.vkey() == v["verifier_key"] and s.skey() == v["signer_key"]
    assert s.sign(v["text"]) == v["signed_note"]
    assert open_note(v["signed_note"], Verifier(v["verifier_key"])) == v["text"]
    both = v["signed_note"] + v["second_signature_line"]
    assert open_note(both, Verifier(v["second_verifier_key"])) == v["text"]
    with pytest.raises(VerificationError, match="not signed by the log key"):
        open_note(v["signed_note"], Verifier(v["second_verifier_key"]))
    with pytest.raises(VerificationError, match="does not verify"):
        open_note(v["signed_note"].replace("cryptography", "Cryptography"), Verifier(v["verifier_key"]))


def test_wycheproof_ed25519(vectors):
    d = json.loads((vectors / "wycheproof_ed25519.json").read_text())
    n = 0
    for g in d["testGroups"]:
        pk = g["publicKey"]["pk"] if isinstance(g["publicKey"], dict) else g["publicKey"]
        pk = bytes.fromhex(pk)
        b64 = base64.b64encode(bytes([1]) + pk).decode()
        vkey = f"w+{key_id('w', pk).hex()}+{b64}"
        try:
            ver = Verifier(vkey)
        except UsageError:
            assert all(t["result"] == "invalid" for t in g["tests"])
            continue
        for t in g["tests"]:
            ok = ver.verify(bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]))
            assert ok == (t["result"] == "valid"), t["tcId"]
            n += 1
    assert n > 100


def test_checkpoint_roundtrip_and_tampering():
    s = Signer.generate("glint.test/log")
    cp = Checkpoint("glint.test/log", 12345, bytes(range(32)))
    note = sign_checkpoint(cp, s)
    assert note.startswith("glint.test/log\n12345\n")
    assert open_checkpoint(note, Verifier(s.vkey()), "glint.test/log") == cp
    with pytest.raises(VerificationError):
        open_checkpoint(note.replace("12345", "12346"), Verifier(s.vkey()))
    with pytest.raises(VerificationError, match="origin"):
        open_checkpoint(note, Verifier(s.vkey()), "glint.test/other")
    with pytest.raises(UsageError):
        Verifier(s.vkey().replace("+", "-", 1))
