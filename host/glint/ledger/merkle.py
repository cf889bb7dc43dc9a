"""RFC 9162 Merkle tree hashing, proof generation and fail-closed proof verification.

Hashing (RFC 9162 section 2.1.1): a leaf hashes as SHA-256(0x00 || leaf bytes), an
interior node as SHA-256(0x01 || left || right); the tree over n leaves splits at the
largest power of two smaller than n.

Verification (sections 2.1.3.2 and 2.1.4.2) is what other tools call to check a proof:
``verify_inclusion`` and ``verify_consistency`` return None on success and raise
``glint.errors.VerificationError`` naming the reason otherwise.

Proof *generation* works on a hash source: ``get_nodes(keys) -> {key: hash}`` where a key
``(level, index)`` names the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``; a store keeps those as its tree-hash
cache, so a proof at any size costs O(log n) look-ups and no rehashing of leaves.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Mapping, Sequence

from glint.errors import VerificationError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# Proof verification rejects absurd inputs before looping over them.
MAX_TREE_SIZE = 1 << 63
MAX_PROOF_HASHES = 64

Key = tuple[int, int]
NodeSource = Callable[[Sequence[Key]], Mapping[Key, bytes]]

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """Hash of one leaf: SHA-256(0x00 || leaf)."""
    return _sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """Root of the tree over the given leaf hashes (reference implementation, O(n))."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# ---------------------------------------------------------------- verification


def _check_hash(value, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
        n = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise VerificationError(f"{what} is not a {HASH_SIZE}-byte hash (got {n})")
    return bytes(value)


def _check_size(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value >= MAX_TREE_SIZE:
        raise VerificationError(f"{what} {value!r} is not a valid tree position")
    return value


def _check_proof(proof) -> list[bytes]:
    if proof is None:
        return []
    if not isinstance(proof, (list, tuple)):
        raise VerificationError("proof is not a list of hashes")
    if len(proof) > MAX_PROOF_HASHES:
        raise VerificationError(f"proof has {len(proof)} hashes, more than any tree needs")
    out = [p for p in proof if type(p) is bytes and len(p) == HASH_SIZE]  # the common case: no message made
    if len(out) != len(proof):
        out = [_check_hash(p, f"proof hash {i}") for i, p in enumerate(proof)]
    return out


def root_from_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes:
    """Root implied by an inclusion proof (RFC 9162 2.1.3.2); raises if the proof is malformed."""
    index = _check_size(index, "leaf index")
    tree_size = _check_size(tree_size, "tree size")
    leaf = _check_hash(leaf, "leaf hash")
    path = _check_proof(proof)
    if index >= tree_size:
        raise VerificationError(f"leaf index {index} is outside a tree of size {tree_size}")
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            raise VerificationError(f"inclusion proof is too long for index {index} in size {tree_size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"inclusion proof is too short for index {index} in size {tree_size}")
    return r


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``tree_size`` with ``root``.

    Follows RFC 9162 section 2.1.3.2. Raises VerificationError with the reason
    (wrong index or size, malformed or wrong-length proof, root mismatch).
    """
    root = _check_hash(root, "root")
    got = root_from_inclusion(leaf_hash, index, tree_size, proof)
    if got != root:
        raise VerificationError(
            f"inclusion proof for index {index} in size {tree_size} does not lead to the root"
            f" (computed {got.hex()[:16]}..., expected {root.hex()[:16]}...)"
        )


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree (size1, root1) is a prefix of the tree (size2, root2).

    Follows RFC 9162 section 2.1.4.2. A proof from size 0 is rejected (there is no
    root to be consistent with); equal sizes need an empty proof and equal roots.
    Raises VerificationError with the reason.
    """
    size1 = _check_size(size1, "size1")
    size2 = _check_size(size2, "size2")
    path = _check_proof(proof)
    if size1 == 0:
        raise VerificationError("consistency proof from an empty tree (size1 = 0)")
    if size2 < size1:
        raise VerificationError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == size2:
        # Same size: the proof is empty and the roots are byte-for-byte equal, whatever they are.
        if path:
            raise VerificationError(f"sizes are equal ({size1}) but the proof is not empty")
        if not isinstance(root1, (bytes, bytearray)) or bytes(root1) != root2:
            raise VerificationError(f"roots differ for the same size {size1}")
        return
    root1 = _check_hash(root1, "root1")
    root2 = _check_hash(root2, "root2")
    if size1 & (size1 - 1) == 0:
        path = [root1] + path
    if not path:
        raise VerificationError(f"consistency proof from {size1} to {size2} is empty")
    fr, sr = consistency_walk(size1, size2, path)
    if fr != root1:
        raise VerificationError(f"consistency proof does not lead to root1 of size {size1}")
    if sr != root2:
        raise VerificationError(f"consistency proof does not lead to root2 of size {size2}")


def consistency_walk(size1: int, size2: int, path: Sequence[bytes]) -> tuple[bytes, bytes]:
    """The (root1, root2) a consistency path implies (RFC 9162 2.1.4.2 steps 3-6).

    ``path`` already starts with root1 when size1 is a power of two. Raises
    VerificationError when the path is too long or too short for the sizes.
    """
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(f"consistency proof from {size1} to {size2} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"consistency proof from {size1} to {size2} is too short")
    return fr, sr


# ---------------------------------------------------------------- generation


def _pieces(lo: int, hi: int) -> list[Key]:
    """Perfect aligned subtrees covering [lo, hi), left to right, largest first."""
    keys = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        # The ranges the RFC recursion produces start at a multiple of their size.
        while lo & ((1 << level) - 1):
            level -= 1
        keys.append((level, lo >> level))
        lo += 1 << level
    return keys


def _inclusion_ranges(m: int, lo: int, hi: int, out: list) -> None:
    """Ranges whose hashes form PATH(m, D[lo:hi]) (RFC 9162 2.1.3.1), leaf-first order."""
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo = lo + k
    out.reverse()


def _consistency_ranges(m: int, lo: int, hi: int, start: bool, out: list) -> None:
    """Ranges whose hashes form SUBPROOF(m, D[lo:hi], start) (RFC 9162 2.1.4.1)."""
    tail = []
    while True:
        n = hi - lo
        if m == n:
            if not start:
                out.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            tail.append((lo + k, hi))
            hi = lo + k
        else:
            tail.append((lo, lo + k))
            lo, m, start = lo + k, m - k, False
    out.extend(reversed(tail))


def _range_hashes(ranges: Sequence[tuple[int, int]], get_nodes: NodeSource) -> list[bytes]:
    """Hashes of the given ranges, fetching every needed stored node in one call."""
    split = [_pieces(lo, hi) for lo, hi in ranges]
    wanted = sorted({k for keys in split for k in keys})
    got = get_nodes(wanted)
    out = []
    for keys in split:
        try:
            h = got[keys[-1]]
            for key in reversed(keys[:-1]):
                h = node_hash(got[key], h)
        except KeyError as e:
            from glint.errors import LedgerError

            raise LedgerError(f"tree-hash cache lacks node {e.args[0]}", "run 'glint ledger verify'") from None
        out.append(h)
    return out


def inclusion_proof(index: int, tree_size: int, get_nodes: NodeSource) -> list[bytes]:
    """Inclusion proof for leaf ``index`` in the tree of ``tree_size`` (RFC 9162 2.1.3.1)."""
    if not 0 <= index < tree_size:
        raise ValueError(f"index {index} outside tree of size {tree_size}")
    ranges: list = []
    _inclusion_ranges(index, 0, tree_size, ranges)
    return _range_hashes(ranges, get_nodes)


def consistency_proof(size1: int, size2: int, get_nodes: NodeSource) -> list[bytes]:
    """Consistency proof from size1 to size2 (RFC 9162 2.1.4.1); empty if the sizes are equal."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to {size2}")
    if size1 == size2:
        return []
    ranges: list = []
    _consistency_ranges(size1, 0, size2, True, ranges)
    return _range_hashes(ranges, get_nodes)


def tree_root(tree_size: int, get_nodes: NodeSource) -> bytes:
    """Root of the first ``tree_size`` leaves, from the stored subtree hashes."""
    if tree_size == 0:
        return EMPTY_ROOT
    return _range_hashes([(0, tree_size)], get_nodes)[0]


class CompactRange:
    """The right edge of a growing tree: one hash per set bit of its size.

    ``append`` returns the interior nodes it completes, as ``(level, index, hash)``,
    which is exactly what a store must add to its tree-hash cache.
    """

    __slots__ = ("size", "stack")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()):
        self.size = size
        # (level, hash) of the perfect subtrees making up [0, size), left to right.
        levels = [b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]
        self.stack = list(zip(levels, hashes))
        if len(self.stack) != len(levels):
            raise ValueError("compact range needs one hash per set bit of the size")

    @staticmethod
    def keys_for(size: int) -> list[Key]:
        """Node keys whose hashes rebuild the compact range of a tree of ``size``."""
        return _pieces(0, size)

    def append(self, lh: bytes) -> list[tuple[int, int, bytes]]:
        stack = self.stack
        index = self.size
        made = []
        # Appending leaf ``index`` completes one subtree per trailing 1 bit of ``index``.
        n = index
        level = 0
        h = lh
        while n & 1:
            h = _sha256(NODE_PREFIX + stack.pop()[1] + h).digest()
            level += 1
            n >>= 1
            made.append((level, index >> level, h))
        stack.append((level, h))
        self.size = index + 1
        return made

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        h = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            h = node_hash(left, h)
        return h
