"""glint ledger: custody events in a tamper-evident Merkle transparency log.

Public API (documented in docs/ledger.md):

- ``Ledger.open(path, keys=...)``: append events (``register_item``, ``add_coating``,
  ``record_verify``, ``transfer``, ``service``, ``rental_out``/``rental_return``,
  ``retire``, ``append_event``/``append_batch``), ``checkpoint()``, ``prove(index)``,
  ``issue_certificate(...)``, ``verify()``.
- ``LedgerWorker``: the one writer thread of a multi-threaded process, with group commit
  (appends from many threads gathered into shared durable commits).
- ``Keys``: the issuer (P-256) and log (Ed25519) keys under the glint home.
- ``verify_inclusion`` / ``verify_consistency``: RFC 9162 proof checks raising
  ``glint.errors.VerificationError``.
- ``verify_certificate(blob, issuer_pub, log_verifier, history=None)``: offline check of a compact
  certificate (and, given the item's earlier leaves, of its history against the chain head).
"""

from glint.ledger.cert import CertInfo
from glint.ledger.cert import verify as verify_certificate
from glint.ledger.group import LedgerWorker
from glint.ledger.keys import Keys, glint_home, load_issuer_public, load_log_verifier
from glint.ledger.log import Appended, EventSpec, InclusionProof, Ledger, VerifyReport, default_path
from glint.ledger.merkle import leaf_hash, node_hash, verify_consistency, verify_inclusion
from glint.ledger.note import Checkpoint, Signer, Verifier, open_checkpoint

__all__ = [
    "Ledger", "LedgerWorker", "Keys", "Appended", "EventSpec", "InclusionProof", "VerifyReport", "CertInfo",
    "verify_inclusion", "verify_consistency", "verify_certificate", "leaf_hash", "node_hash",
    "Checkpoint", "Signer", "Verifier", "open_checkpoint", "glint_home", "default_path",
    "load_issuer_public", "load_log_verifier",
]
