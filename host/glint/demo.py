"""`glint demo`: kept as the import path of the demo; the demo itself is glint.workflows.demo."""

from glint.workflows.demo import run_demo

__all__ = ["run_demo"]
