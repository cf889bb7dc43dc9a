"""glint command line: a thin layer over the library (docs/cli.md lists every command).

Conventions, the same for every command:

- One command table (COMMANDS): command name -> the ``glint.commands.<module>`` that
  registers it with ``register(subparsers)``. A handler is named ``cmd_<subcommand>``
  (``-`` as ``_``), takes the parsed arguments and returns an exit code.
- Global options, valid before or after the subcommand: ``--home DIR``, ``--create``
  (make a home that does not exist yet), ``-v/--verbose``.
- A scanner is named with ``-p/--port URL`` (glint.address: pyserial URLs, ``HOST:PORT``,
  ``auto``, ``list``); servers take ``--listen HOST:PORT``; ``--json`` on every command that
  prints a result. Old forms (a positional PORT) still work for one release, with a warning.
- Errors end as one line ``glint: <message>`` (plus a hint), never a traceback: GlintError
  exits 2 (or its own code), anything unexpected is named in one line and exits 70;
  Ctrl-C exits 130. Logging is configured here and only here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import sys

from glint import __version__
from glint.errors import GlintError

_log = logging.getLogger(__name__)

# The command table, in help order: command -> module under glint.commands.
COMMANDS: dict[str, str] = {
    "init": "init",
    "demo": "demo",
    "scan": "scan",
    "enroll": "match",
    "verify": "match",
    "identify": "match",
    "unenroll": "match",
    "intake": "lifecycle",
    "transfer": "lifecycle",
    "service": "lifecycle",
    "rental": "lifecycle",
    "retire": "lifecycle",
    "lab": "lab",
    "ledger": "ledger",
    "cert": "cert",
    "passport": "passport",
    "assembly": "assembly",
    "derive": "lineage",
    "bind": "lineage",
    "lookup": "lineage",
    "insights": "insights",
    "device": "device",
    "bench": "bench",
    "daemon": "daemon",
    "status": "status",
    "serve": "serve",
    "api-key": "api_key",
    "org": "org",
    "ship": "ship",
    "share": "share",
    "virtual-scanner": "virtual_scanner",
    "sim": "sim",
    "fw": "fw",
    "bringup": "bringup",
    "inspect": "inspect",
    "cose": "cose",
}

# Commands that work in a glint home (refused when it does not exist; --create makes it).
# "demo" takes --home too, but makes a temporary home when none is given; "init" creates one.
USES_HOME = frozenset({
    "status", "scan", "enroll", "bench", "daemon", "serve", "api-key create", "api-key list", "api-key revoke",
    "intake", "transfer", "service", "rental out", "rental return", "retire",
    "device provision", "device list", "device revoke", "device alerts",
    "ledger log", "ledger show", "ledger prove", "ledger checkpoint", "ledger verify", "ledger append",
    "cert keys", "cert issue", "cert void", "fw provision", "org create", "org list",
    "ship offer", "ship accept", "ship reject", "ship cancel", "ship list", "share grant", "share revoke",
    "passport set", "passport show", "passport erase", "assembly define", "assembly show", "derive", "bind", "lookup", "insights",
})

EXIT_ERROR = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug, named in one line
EXIT_INTERRUPTED = 130
DEPRECATED_IN = "0.1"  # old forms removed in the release after this one


def _add_globals(p: argparse.ArgumentParser, top: bool) -> None:
    """The global options; below the top level their default is SUPPRESS, so a value given
    before the subcommand is not reset by the subcommand's parser."""
    d = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    g = p.add_argument_group("global options")
    g.add_argument("--home", metavar="DIR", default=d(None),
                   help="glint home directory (default $GLINT_HOME, else ~/.glint); must exist unless --create")
    g.add_argument("--create", action="store_true", default=d(False),
                   help="create the home if it does not exist (as 'glint init' does)")
    g.add_argument("-v", "--verbose", action="count", default=d(0), help="more log output (-vv for debug)")


def add_port_argument(p: argparse.ArgumentParser, multiple: bool = False, legacy_positional: bool = False,
                      default_help: str = "auto: the one USB scanner found") -> None:
    """``-p/--port URL``: how every command names a scanner (glint.address)."""
    from glint.address import PORT_FORMAT

    if multiple:
        p.add_argument("-p", "--port", action="append", default=[], metavar="URL",
                       help=f"scanner port (repeatable, one thread per scanner): {PORT_FORMAT}")
    else:
        p.add_argument("-p", "--port", metavar="URL", default=None,
                       help=f"scanner port: {PORT_FORMAT} (default {default_help})")
    if legacy_positional:
        p.add_argument("legacy_port", nargs="?", metavar="PORT",
                       help="deprecated: the scanner port as a positional argument; use -p/--port")


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every command that runs (the leaves of the parser tree)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for action in subs:
        for name, sp in action.choices.items():
            yield from leaf_parsers(sp, path + (name,))


def _all_parsers(parser):
    yield parser
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sp in a.choices.values():
                yield from _all_parsers(sp)


def command_table(parser: argparse.ArgumentParser | None = None) -> list[dict]:
    """One row per command: how it names a scanner, whether it works in a home, --json, --listen."""
    rows = []
    for path, p in leaf_parsers(parser or build_parser()):
        opts = {o: a for a in p._actions for o in a.option_strings}
        port = opts.get("--port")
        legacy = any(a.dest == "legacy_port" for a in p._actions)
        name = " ".join(path)
        rows.append({
            "command": name,
            "port": "" if port is None else ("-p URL (repeatable)" if isinstance(port, argparse._AppendAction)
                                             else "-p URL" + (" (PORT deprecated)" if legacy else "")),
            "home": "yes" if name in USES_HOME else ("temporary unless --home" if name == "demo"
                                                     else "creates" if name == "init" else ""),
            "json": "--json" if "--json" in opts else "",
            "listen": "--listen HOST:PORT" if "--listen" in opts else "",
            "help": next((a.help for a in _parent_choices(parser, path)), "") or "",
        })
    return rows


def _parent_choices(parser, path):
    """The help text of the sub-parser at ``path`` (argparse keeps it on the parent's choices)."""
    p = parser or build_parser()
    for i, name in enumerate(path):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                if i == len(path) - 1:
                    yield from (c for c in a._choices_actions if c.dest == name)
                p = a.choices[name]
                break


def command_table_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    parser = parser or build_parser()
    lines = ["| command | scanner | home | JSON | listens | what it does |", "|---|---|---|---|---|---|"]
    for r in command_table(parser):
        lines.append(f"| `glint {r['command']}` | {r['port'] and '`' + r['port'] + '`'} | {r['home']} | "
                     f"{r['json'] and '`--json`'} | {r['listen'] and '`' + r['listen'] + '`'} | {r['help']} |")
    return "\n".join(lines) + "\n"


def _command_named(argv: list[str]) -> str | None:
    """The command ``argv`` runs, past the global options before it; None when that is not plain
    (no command, --help, --version, an abbreviated or unknown option): then every command is loaded."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--home":
            i += 2
        elif a.startswith("--home=") or a in ("--create", "--verbose") or (a[:2] == "-v" and set(a[1:]) == {"v"}):
            i += 1
        else:
            return a if a in COMMANDS else None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of ``command``'s module (what ``main`` runs: importing
    every command module costs a second or more, which every invocation of glint would pay)."""
    parser = argparse.ArgumentParser(
        prog="glint",
        description="glint: authenticate physical objects by their optical fingerprint. "
                    "Every command: glint COMMAND --help; the table of all: docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"glint {__version__}")
    _add_globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()) if command is None else (COMMANDS[command],):
        importlib.import_module(f"glint.commands.{module}").register(sub)
    for p in _all_parsers(parser):
        if p is not parser:
            _add_globals(p, top=False)
    return parser


def _configure_logging(verbose: int) -> None:
    level = os.environ.get("GLINT_LOG", "").upper() or (
        "DEBUG" if verbose >= 2 else "INFO" if verbose == 1 else "WARNING"
    )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _legacy_forms(args) -> None:
    """Old spellings that still work for one release, each with one warning line."""
    legacy = getattr(args, "legacy_port", None)
    if legacy is not None:
        if getattr(args, "port", None):
            from glint.errors import UsageError

            raise UsageError(f"two ports given ({legacy} and -p {args.port})", hint="give only -p/--port URL")
        print(f"glint: warning: a positional PORT is deprecated (removed after glint {DEPRECATED_IN}); "
              f"use -p {legacy}", file=sys.stderr)
        args.port = legacy


def _list_ports() -> int:
    from glint.link.discover import discover

    found = discover()
    for f in found:
        print(f"{f.port}  {f.board_id}")
    if not found:
        print("no scanner found on USB", file=sys.stderr)
    return 0


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_named(argv))
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        _legacy_forms(args)
        ports = getattr(args, "port", None)
        if ports == "list" or (isinstance(ports, list) and "list" in ports):
            return _list_ports()
        return int(args.func(args) or 0)
    except GlintError as e:
        print(f"glint: {e.oneline()}", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_ERROR)
    except KeyboardInterrupt:
        print("glint: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except sqlite3.Error as e:
        print(f"glint: database error: {_one_line(e)} (check that the home is writable and not in use; "
              "glint -vv shows more)", file=sys.stderr)
        _log.debug("database error", exc_info=True)
        return EXIT_ERROR
    except OSError as e:
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"glint: {e.strerror or _one_line(e)}{where}", file=sys.stderr)
        _log.debug("OS error", exc_info=True)
        return EXIT_ERROR
    except UnicodeDecodeError as e:
        print(f"glint: input is not UTF-8 text ({e.reason} at byte {e.start})", file=sys.stderr)
        return EXIT_ERROR
    except EOFError:
        print("glint: no input: stdin is closed (pass the option that answers without asking, e.g. --yes)",
              file=sys.stderr)
        return EXIT_ERROR
    except RecursionError:
        print("glint: input nested too deeply", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # a bug: one line naming it, the traceback only with -vv
        print(f"glint: internal error: {type(e).__name__}: {_one_line(e)} (glint -vv shows the traceback; "
              "please report it)", file=sys.stderr)
        _log.debug("internal error", exc_info=True)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
