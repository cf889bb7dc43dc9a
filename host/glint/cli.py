"""glint command line: a thin layer over the library.

Each command group lives in ``glint.commands.<module>`` and exposes
``register(subparsers)``, which adds its sub-commands with ``set_defaults(func=...)``.
A handler returns an exit code (0 on success). Errors derived from GlintError end
as one line ``glint: <message>`` (plus a hint) and exit code 2 unless the error
says otherwise; logging is configured here and only here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys

from glint import __version__
from glint.errors import GlintError

# Command modules in help order. A module that does not exist yet is skipped;
# one that exists but fails to import is a bug and is raised.
COMMAND_MODULES = [
    "demo",
    "scan",
    "match",
    "lab",
    "ledger",
    "cert",
    "device",
    "bench",
    "daemon",
    "status",
    "serve",
    "virtual_scanner",
    "sim",
    "fw",
    "bringup",
    "inspect",
    "cose",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glint",
        description="glint: authenticate physical objects by their optical fingerprint.",
    )
    parser.add_argument("--version", action="version", version=f"glint {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        modname = f"glint.commands.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(sub)
    return parser


def _configure_logging(verbose: int) -> None:
    level = os.environ.get("GLINT_LOG", "").upper() or (
        "DEBUG" if verbose >= 2 else "INFO" if verbose == 1 else "WARNING"
    )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GlintError as e:
        print(f"glint: {e.oneline()}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    except KeyboardInterrupt:
        print("glint: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
