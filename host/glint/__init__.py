"""glint host companion: talks to scanners, verifies scans, matches, keeps the ledger."""

from glintcore import VERSION as __version__  # noqa: F401
