"""Command line: parse the arguments, run one command (a view that returns ONE document), render it once.

Nothing else lives here: the commands are in bwdoctor.commands, the pipeline in bwdoctor.engine, every output
format in bwdoctor.render.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, List, Optional

from . import __version__, exitcodes
from .errors import UsageError

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_NOTHING = exitcodes.OK, exitcodes.GATE, exitcodes.USAGE, exitcodes.INCOMPLETE

EPILOG = """exit codes (each command's --help lists its own; the README has the table):
  0 the answer is yes and everything needed was evaluated    1 the answer is no (the gate failed, it does not fit)
  2 usage: an option or a named input that cannot be used     3 no verdict: nothing evaluated, a check crashed or
    could not run because its probe crashed or timed out, or bwdoctor itself failed      130 interrupted
examples:
  bwdoctor check                         what will break on this machine
  bwdoctor check --target sm_120         check the software for an RTX 50xx this host lacks
  bwdoctor check --format sarif -o bw.sarif --fail-on warning
  bwdoctor facts --format json > host.json; bwdoctor check --facts host.json
  bwdoctor explain undefined-symbol      the article on a failure topic
  bwdoctor explain "$(cat error.txt)"    which topic a pasted error is"""


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options accepted both before and after the subcommand."""

    def d(v: Any) -> Any:
        return argparse.SUPPRESS if suppress else v

    g = parser.add_argument_group("machine and environment")
    g.add_argument(
        "--root",
        metavar="DIR",
        default=d("/"),
        help="read the machine under DIR (an unpacked image or a captured host): /proc, /sys, /etc, "
        "CUDA toolkits and its Python environments (default /)",
    )
    g.add_argument(
        "--python",
        metavar="PATH",
        default=d(None),
        help="inspect this interpreter's environment (default: $VIRTUAL_ENV/$CONDA_PREFIX python, "
        "else the one running bwdoctor; under --root: a path inside the tree, read, never run)",
    )
    g.add_argument(
        "--target",
        metavar="SM",
        action="append",
        default=d(None),
        help="GPU architecture to check for, e.g. sm_120 or 12.0 (repeatable; default: $BWDOCTOR_TARGET, "
        "else the GPUs present)",
    )
    g.add_argument(
        "--no-plugins",
        action="store_true",
        default=d(False),
        help="load no third-party checks or probes (or pin them with BWDOCTOR_PLUGINS=a,b)",
    )
    g.add_argument(
        "--no-cache",
        action="store_true",
        default=d(False),
        help="neither read nor write the cache of per-file results (also: BWDOCTOR_NO_CACHE=1; "
        "it lives in $BWDOCTOR_CACHE_DIR, else $XDG_CACHE_HOME/bwdoctor)",
    )
    o = parser.add_argument_group("output")
    o.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=d(False),
        help="show passes, skips with their reasons, and the facts",
    )
    o.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=d(False),
        help="text: only what failed (nothing when nothing did)",
    )
    o.add_argument(
        "--no-color",
        action="store_true",
        default=d(False),
        help="no colour (also: NO_COLOR=1; FORCE_COLOR=1 or CLICOLOR_FORCE=1 force it where NO_COLOR is unset)",
    )
    o.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=d(None),
        help="write the output to FILE instead of stdout (the same bytes)",
    )


def terminal_columns(fallback: int) -> int:
    """shutil.get_terminal_size(...).columns without importing shutil (with bz2 and lzma): $COLUMNS when it is a
    positive number, else the width of the terminal on stdout, else the fallback."""
    try:
        cols = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        cols = 0
    if cols <= 0:
        try:
            cols = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            cols = 0
    return cols or fallback


class RawFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written, at the width argparse's formatter takes (the terminal's, 80 without
    one, less 2), read without shutil: every parser builds a formatter, also the ones that never print help."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: Optional[int] = None):
        width = terminal_columns(80) - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class HelpFormatter(RawFormatter):
    """Descriptions and epilogs as written, and each option's default after its help (unless it says one)."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        text = action.help
        default = action.default
        if (
            not text
            or "default" in text
            or not action.option_strings
            or default in (None, False, argparse.SUPPRESS)
            or default == []
        ):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors and help cleaned like every other output (they may echo argv)."""

    exit_codes_of: Optional[str] = None  # a subcommand: its "exit codes:" block is added to the epilog when shown

    def _print_message(self, message: str, file: Any = None) -> None:
        from .render.safe import clean_text

        super()._print_message(clean_text(message) if message else message, file)

    def format_help(self) -> str:
        if self.exit_codes_of is not None:  # built when help is shown: wrapping the table costs every other run
            extra = self.epilog
            self.epilog = exitcodes.epilog(self.exit_codes_of) + (f"\n{extra}" if extra else "")
            self.exit_codes_of = None
        return super().format_help()


class _Retry(Exception):
    """A one-command parser met something it cannot judge alone: parse again with every command registered."""


class _OneCommandParser(_Parser):
    """The parser of one command (and the options shared by all): it never prints a usage error, which must name
    every command, but hands the arguments back to the full parser."""

    def error(self, message: str) -> Any:
        raise _Retry(message)


class _Detached:
    """What add_parser returns for a command that is not the one being run: accepts and drops its options."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: self


def command_of(argv: List[str]) -> Optional[str]:
    """The command named in argv (the first word that is one), or None when there is none or help is asked for
    before it (the top-level help lists every command)."""
    from .commands import COMMAND_MODULES

    for word in argv:
        if word in ("-h", "--help") or word == "--":
            return None
        if word in COMMAND_MODULES:
            return word
    return None


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered, or (only=NAME) with that command alone: importing and
    registering every command costs more than most commands' own work. A one-command parser raises _Retry for
    anything it would call a usage error."""
    p = (_OneCommandParser if only else _Parser)(
        prog="bwdoctor",
        formatter_class=RawFormatter,
        epilog=EPILOG,
        description="Preflight doctor for serving LLMs with vLLM on NVIDIA GPUs, Blackwell first: reads the "
        "driver, kernel modules, CUDA toolkits, Python environment and compiled GPU code, and says "
        "what will break, why, and the exact fix. torch is never imported.",
    )
    p.add_argument("--version", action="version", version=f"bwdoctor {__version__}")
    _common(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    class _Sub:
        """add_parser with the shared options and formatting on every subcommand."""

        def add_parser(self, name: str, **kw: Any) -> Any:
            if only and name != only:
                return _Detached()
            kw.setdefault("description", kw.get("help"))
            kw.setdefault("formatter_class", HelpFormatter)
            kw["epilog"] = kw.get("epilog") if kw.get("epilog") not in (None, EPILOG) else None
            sp = sub.add_parser(name, **kw)
            sp.exit_codes_of = name
            _common(sp, suppress=True)
            return sp

    from .commands import COMMAND_MODULES, COMMANDS

    for modname in [COMMAND_MODULES[only]] if only else COMMANDS:
        importlib.import_module(modname).register(_Sub(), epilog=EPILOG)
    return p


def parse(argv: List[str]) -> Any:
    """The parsed arguments (SystemExit from argparse for --help, --version and usage errors). The command's own
    parser is tried first; whatever it cannot judge alone is parsed again by the full one, whose messages are
    the ones a user sees."""
    only = command_of(argv)
    if only:
        try:
            args = build_parser(only).parse_args(argv)
            if getattr(args, "func", None):  # else the word was an option's value, and no command was named
                return args
        except _Retry:
            pass
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):  # no subcommand: check is the default
        args = parser.parse_args(argv + ["check"])
    return args


def use_color(args: Any) -> bool:
    """Colour for a terminal, or where FORCE_COLOR / CLICOLOR_FORCE ask for it (CI logs); never with --no-color,
    NO_COLOR (which wins over both) or --output."""
    if args.no_color or os.environ.get("NO_COLOR") or args.output:
        return False
    force = os.environ.get("FORCE_COLOR", "")
    if force and force.lower() not in ("0", "false", "no"):
        return True
    if os.environ.get("CLICOLOR_FORCE", "") not in ("", "0"):
        return True
    return sys.stdout.isatty()


def text_width(args: Any) -> Optional[int]:
    """Columns to wrap text at on a terminal (its width; $COLUMNS overrides it); None for a pipe or a file, which
    get one line per item (grep finds a whole message)."""
    if args.output or not sys.stdout.isatty():
        return None
    return terminal_columns(100)


def emit(output: Optional[str], text: str) -> None:
    """Write the rendered document once: to --output FILE, else stdout."""
    if output:
        from .fileio import describe, write_output

        try:
            write_output(output, text)
        except OSError as exc:
            raise UsageError(f"--output {output}: {describe(exc)}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def run(args: Any) -> int:
    """Run the parsed command, render its document once, and return its exit code."""
    from .render import RenderOptions, render

    if getattr(args, "no_cache", False):
        from . import cache

        cache.disable()
    outcome = args.func(args)
    if "bwdoctor.cache" in sys.modules:  # the run wrote entries: keep the cache directory bounded
        sys.modules["bwdoctor.cache"].finish()
    width = text_width(args)
    options = RenderOptions(
        verbose=args.verbose,
        color=use_color(args),
        fail_on=getattr(args, "fail_on", "error"),
        show_all=bool(getattr(args, "all", False)),
        width=width or 100,
        wrap=width is not None,
        quiet=bool(getattr(args, "quiet", False)),
    )
    emit(args.output, render(outcome, getattr(args, "format", "text"), options))
    from .render.safe import clean_text

    for message in outcome.messages:
        print(f"bwdoctor {args.command}: {clean_text(str(message))}", file=sys.stderr)
    return int(outcome.code)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the bwdoctor command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:  # the one answer that needs no parser (start-up cost: the interpreter's only)
        sys.stdout.write(f"bwdoctor {__version__}\n")
        return EXIT_OK
    try:
        try:
            args = parse(argv)
        except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
            return int(exc.code or 0)
        return run(args)
    except UsageError as exc:
        from .render.safe import clean_text

        print(f"bwdoctor: {clean_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("bwdoctor: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last line of defence: never a traceback for a user
        if os.environ.get("BWDOCTOR_DEBUG"):
            raise
        from .render.safe import clean_text

        print(
            f"bwdoctor: internal error: {type(exc).__name__}: {clean_text(str(exc))} "
            "(set BWDOCTOR_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_NOTHING  # no verdict: never 0, and not 2, which says the user's input is wrong


def console() -> None:
    """The `bwdoctor` command and `python -m bwdoctor`: main() with a slower-paced collector, then the exit
    handlers, then the process ends without tearing the interpreter down. Freeing every object of a run one by
    one (a report's facts, every module) costs 50-100 ms, more than some whole commands; the operating system
    reclaims it at once. main() itself stays an ordinary function for whoever calls it in-process."""
    import atexit
    import gc

    # The process is short and keeps what it builds until it ends: the collector's default pace (a pass every 700
    # allocations, each walking every young object) spends 10-40 ms on a report's facts and finds little. Cycles
    # are still collected, every 50,000 allocations. Set here, for the command's own process only.
    gc.set_threshold(50_000)
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away (`| head`), or the stream is closed
            pass
        except OSError:
            code = code or EXIT_NOTHING
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's: what normal shutdown runs first
    if run_exit_handlers is None:  # pragma: no cover - another interpreter: shut down the ordinary way
        sys.exit(code)
    run_exit_handlers()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
