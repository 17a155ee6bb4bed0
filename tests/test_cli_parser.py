"""The one-command parser: `bwdoctor CMD ...` registers only CMD, and must parse exactly as the full parser does,
leaving every usage error and the top-level help to the full parser."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from typing import Any, List, Tuple

import pytest

from bwdoctor import cli
from bwdoctor.commands import COMMAND_MODULES


def _subparsers(parser: Any) -> Any:
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")


def test_command_table_names_every_command_and_its_module():
    full = _subparsers(cli.build_parser())
    assert set(full.choices) == set(COMMAND_MODULES)
    for name in COMMAND_MODULES:
        one = _subparsers(cli.build_parser(only=name))
        assert list(one.choices) == [name]  # the table's module registers that command
        assert one.choices[name].format_help() == full.choices[name].format_help()


def _outcome(argv: List[str], parse: Any) -> Tuple[Any, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            args = parse(argv)
            result: Any = {k: v for k, v in vars(args).items() if k != "func"}
            result["func"] = getattr(args.func, "__name__", None)
        except SystemExit as exc:
            result = ("exit", exc.code)
    return result, out.getvalue(), err.getvalue()


def _full(argv: List[str]) -> Any:
    parser = cli.build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(argv + ["check"])
    return args


@pytest.mark.parametrize(
    "argv",
    [
        ["check"],
        ["check", "--format", "json", "--target", "sm_120", "-q"],
        ["--root", "/x", "check", "--select", "BW2"],
        ["list", "kb"],
        ["explain", "undefined-symbol"],
        ["explain", "--log", "-", "--format", "json"],
        ["kernels", "--help"],
        ["check", "--help"],
        ["--help"],
        ["--help", "check"],
        ["check", "--bogus"],  # a usage error: its usage line must list every command
        ["chek"],
        ["--root"],
        ["--python", "check"],  # a value that is a command's name, and no command
        ["--output", "list", "check"],  # the first command-like word is a value
        ["--python", "list", "check", "-q"],
        ["list", "nonsense"],
        ["verify-build", "--help"],
        ["fleet", "--help"],
        ["--", "check"],
        [],
    ],
)
def test_one_command_parse_equals_full_parse(argv):
    assert _outcome(argv, cli.parse) == _outcome(argv, _full)


def test_usage_error_names_every_command():
    _, _, err = _outcome(["check", "--bogus"], cli.parse)
    assert "unrecognized arguments: --bogus" in err
    assert "COMMAND" in err
