"""The CLI's conventions hold for every command (docs/cli.md): one table, handler names, help on every
option and positional, -p/--port as the only way to name a scanner, global options, the docs' table."""

from __future__ import annotations

import argparse
from pathlib import Path

from glint import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_command_table_is_the_parser():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(cli.COMMANDS)
    leaves = {" ".join(path) for path, _ in cli.leaf_parsers(parser)}
    assert cli.USES_HOME <= leaves


def test_handler_naming_rule_and_help_everywhere():
    for path, p in cli.leaf_parsers(cli.build_parser()):
        func = p.get_default("func")
        assert func is not None, path
        assert func.__name__ == "cmd_" + path[-1].replace("-", "_"), (path, func.__name__)
        assert func.__module__ == "glint.commands." + cli.COMMANDS[path[0]], (path, func.__module__)
        for a in p._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            assert a.help and a.help != argparse.SUPPRESS, (path, a.dest)


def test_scanner_is_named_only_by_dash_p():
    for path, p in cli.leaf_parsers(cli.build_parser()):
        for a in p._actions:
            if "--port" in a.option_strings:
                assert a.option_strings == ["-p", "--port"], path
            if not a.option_strings:
                assert a.dest in ("legacy_port",) or a.metavar != "PORT", (path, a.dest)


def test_global_options_before_and_after():
    parser = cli.build_parser()
    a = parser.parse_args(["--home", "A", "-v", "status"])
    b = parser.parse_args(["status", "--home", "A", "-v"])
    c = parser.parse_args(["ledger", "log", "--create", "--home", "A"])
    assert (a.home, a.verbose) == (b.home, b.verbose) == ("A", 1)
    assert c.home == "A" and c.create
    assert parser.parse_args(["--home", "A", "status"]).home == "A"  # not reset by the subcommand's default


def test_docs_table_is_current():
    assert cli.command_table_markdown() in DOC.read_text(), "regenerate docs/cli.md's table (glint.cli.command_table_markdown)"


def test_main_loads_only_the_command_it_runs_with_the_same_parser():
    """main() builds the parser of the named command's module only (importing them all costs a second or
    more a run); each command's parser is the one of the full parser, and anything else loads them all."""
    named = cli._command_named
    assert named(["scan", "-p", "x"]) == "scan"
    assert named(["--home", "scan", "-vv", "--create", "ledger", "log"]) == "ledger"  # a home called "scan"
    assert named(["--home=h", "--verbose", "-v", "status"]) == "status"
    for argv in ([], ["--help"], ["--version"], ["--hom", "h", "scan"], ["-x", "scan"], ["nonsense"], ["--home"]):
        assert named(argv) is None, argv
    full = {" ".join(path): p.format_help() for path, p in cli.leaf_parsers(cli.build_parser())}
    for command in cli.COMMANDS:
        only = {" ".join(path): p.format_help() for path, p in cli.leaf_parsers(cli.build_parser(command))}
        mine = {k: v for k, v in only.items() if k == command or k.startswith(command + " ")}
        assert mine and mine == {k: v for k, v in full.items() if k == command or k.startswith(command + " ")}
