"""RFC 9162 proofs: the transparency-dev vectors, generated proofs, and every corruption rejected."""

from __future__ import annotations

import base64
import json

import pytest

from glint.errors import VerificationError
from glint.ledger import merkle as M

VEC = "merkle/testdata"


def _b(x):
    return base64.b64decode(x) if x is not None else None


def _cases(vectors, kind):
    files = sorted((vectors / VEC / kind).rglob("*.json"))
    assert files, f"no {kind} vectors"
    return files


def test_inclusion_vectors(vectors):
    n = 0
    for f in _cases(vectors, "inclusion"):
        v = json.loads(f.read_text())
        args = (_b(v["leafHash"]), v["leafIdx"], v["treeSize"], [_b(p) for p in v["proof"] or []], _b(v["root"]))
        if v["wantErr"]:
            with pytest.raises(VerificationError):
                M.verify_inclusion(*args)
        else:
            M.verify_inclusion(*args)
        n += 1
    assert n >= 50


def test_consistency_vectors(vectors):
    n = 0
    for f in _cases(vectors, "consistency"):
        v = json.loads(f.read_text())
        args = (v["size1"], v["size2"], [_b(p) for p in v["proof"] or []], _b(v["root1"]), _b(v["root2"]))
        if v["wantErr"]:
            with pytest.raises(VerificationError):
                M.verify_consistency(*args)
        else:
            M.verify_consistency(*args)
        n += 1
    assert n >= 50


class Tree:
    """A reference tree with a full node cache, as a store would keep it."""

    def __init__(self, n):
        self.leaves = [M.leaf_hash(b"leaf %d" % i) for i in range(n)]
        self.nodes = {}
        cr = M.CompactRange()
        for i, h in enumerate(self.leaves):
            self.nodes[(0, i)] = h
            for lv, ix, nh in cr.append(h):
                self.nodes[(lv, ix)] = nh
        self.cr = cr

    def get(self, keys):
        return {k: self.nodes[k] for k in keys if k in self.nodes}

    def root(self, n=None):
        return M.root_of(self.leaves[: len(self.leaves) if n is None else n])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 16, 31, 33])
def test_generated_proofs_verify(n):
    t = Tree(n)
    root = t.root()
    assert t.cr.root() == root == M.tree_root(n, t.get)
    for i in range(n):
        M.verify_inclusion(t.leaves[i], i, n, M.inclusion_proof(i, n, t.get), root)
    for m in range(1, n + 1):
        M.verify_consistency(m, n, M.consistency_proof(m, n, t.get), t.root(m), root)
    keys = M.CompactRange.keys_for(n)
    assert M.CompactRange(n, [t.nodes[k] for k in keys]).root() == root


def _flip(h, bit):
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _inclusion_corruptions(leaf, i, n, proof, root):
    yield "wrong index +1", (leaf, i + 1, n, proof, root)
    if i > 0:
        yield "wrong index -1", (leaf, i - 1, n, proof, root)
    yield "wrong size +1", (leaf, i, n + 1, proof, root)
    if n - 1 > i:
        yield "wrong size -1", (leaf, i, n - 1, proof, root)
    yield "size doubled", (leaf, i, 2 * n, proof, root)
    yield "flipped leaf bit", (_flip(leaf, 77), i, n, proof, root)
    yield "wrong root", (leaf, i, n, proof, _flip(root, 0))
    yield "truncated root", (leaf, i, n, proof, root[:31])
    yield "extra hash", (leaf, i, n, proof + [root], root)
    yield "extra leading hash", (leaf, i, n, [leaf] + proof, root)
    for k in range(len(proof)):
        yield f"flipped bit in hash {k}", (leaf, i, n, proof[:k] + [_flip(proof[k], 200)] + proof[k + 1:], root)
        yield f"missing hash {k}", (leaf, i, n, proof[:k] + proof[k + 1:], root)
        yield f"empty hash {k}", (leaf, i, n, proof[:k] + [b""] + proof[k + 1:], root)
    for k in range(len(proof) - 1):
        if proof[k] != proof[k + 1]:
            sw = list(proof)
            sw[k], sw[k + 1] = sw[k + 1], sw[k]
            yield f"reordered hashes {k},{k + 1}", (leaf, i, n, sw, root)


_RANDOM = [M.leaf_hash(b"random %d" % k) for k in range(M.MAX_PROOF_HASHES + 1)]


def _same_inclusion_walk(i, n, n2, length):
    """True if the RFC walk for (i, n2) hashes exactly like (i, n) for every proof of this length.

    Then the size is not something the proof can witness: the signed checkpoint binds
    the size to the root. Any size that changes the walk must be rejected.
    """
    try:
        return M.root_from_inclusion(_RANDOM[0], i, n2, _RANDOM[1:length + 1]) == M.root_from_inclusion(
            _RANDOM[0], i, n, _RANDOM[1:length + 1])
    except VerificationError:
        return False


def _same_consistency_walk(m, n, m2, n2, length):
    path = _RANDOM[:length]
    try:
        return M.consistency_walk(m2, n2, path) == M.consistency_walk(m, n, path)
    except VerificationError:
        return False


@pytest.mark.parametrize("n", [1, 2, 3, 6, 7, 13, 32, 45])
def test_inclusion_rejects_every_corruption(n):
    t = Tree(n)
    root = t.root()
    for i in range(n):
        proof = M.inclusion_proof(i, n, t.get)
        for what, args in _inclusion_corruptions(t.leaves[i], i, n, proof, root):
            if args[1] == i and args[2] != n and _same_inclusion_walk(i, n, args[2], len(proof)):
                continue  # the size alias is caught by the checkpoint, see _same_inclusion_walk
            with pytest.raises(VerificationError):
                M.verify_inclusion(*args)
                pytest.fail(f"accepted {what} for leaf {i} of {n}")


@pytest.mark.parametrize("n", [2, 3, 7, 8, 13, 32, 45])
def test_consistency_rejects_every_corruption(n):
    t = Tree(n)
    r2 = t.root()
    for m in range(1, n):
        r1 = t.root(m)
        proof = M.consistency_proof(m, n, t.get)
        bad = [
            ("size1 +1", (m + 1, n, proof, r1, r2)),
            ("size1 -1", (m - 1, n, proof, r1, r2)),
            ("size2 +1", (m, n + 1, proof, r1, r2)),
            ("size2 -1", (m, n - 1, proof, r1, r2)),
            ("wrong root1", (m, n, proof, _flip(r1, 3), r2)),
            ("wrong root2", (m, n, proof, r1, _flip(r2, 3))),
            ("swapped roots", (m, n, proof, r2, r1)),
            ("extra hash", (m, n, proof + [r1], r1, r2)),
            ("extra leading hash", (m, n, [r1] + proof, r1, r2)),
        ]
        for k in range(len(proof)):
            bad.append((f"flipped {k}", (m, n, proof[:k] + [_flip(proof[k], 9)] + proof[k + 1:], r1, r2)))
            bad.append((f"missing {k}", (m, n, proof[:k] + proof[k + 1:], r1, r2)))
        for k in range(len(proof) - 1):
            sw = list(proof)
            sw[k], sw[k + 1] = sw[k + 1], sw[k]
            if sw != proof:
                bad.append((f"reordered {k}", (m, n, sw, r1, r2)))
        for what, args in bad:
            m2, n2 = args[0], args[1]
            if (m2, n2) != (m, n) and m2 == m and 0 < m2 < n2:
                length = len(proof) + (1 if m & (m - 1) == 0 else 0)  # root1 is prepended for powers of 2
                if _same_consistency_walk(m, n, m2, n2, length):
                    continue  # size alias, bound by the signed checkpoint
            with pytest.raises(VerificationError):
                M.verify_consistency(*args)
                pytest.fail(f"accepted {what} for {m} -> {n}")


def test_reasons_are_specific():
    t = Tree(5)
    proof = M.inclusion_proof(2, 5, t.get)
    with pytest.raises(VerificationError, match="outside a tree of size 5"):
        M.verify_inclusion(t.leaves[2], 5, 5, proof, t.root())
    with pytest.raises(VerificationError, match="too long"):
        M.verify_inclusion(t.leaves[2], 2, 5, proof + proof, t.root())
    with pytest.raises(VerificationError, match="does not lead to the root"):
        M.verify_inclusion(t.leaves[3], 2, 5, proof, t.root())
