"""The exit codes of every command: one table that feeds each --help epilog and the README "Exit codes" section.

The scheme: 0 the answer is yes and everything needed was evaluated; 1 the answer is no (the gate failed, it does
not fit, a library lacks code or does not load); 2 usage: an option or a named input that cannot be used; 3 no
verdict: nothing could be evaluated, a check crashed or could not run because its probe crashed or timed out,
or bwdoctor itself failed. tests/test_exit_codes.py covers every row (the test named in it) and checks that the
README table says the same as this one.
"""

from __future__ import annotations

from typing import List

from .commands import COMMAND_MODULES
from .records import dataclass

OK, GATE, USAGE, INCOMPLETE, INTERRUPTED = 0, 1, 2, 3, 130


@dataclass(frozen=True)
class Row:  # a record, not a NamedTuple: building one costs every command's start
    """One exit code of one command ("*": every command), what it means, and the test that proves it."""

    command: str
    code: int
    meaning: str
    test: str


_NAMED = (
    "a named input cannot be used: --python (missing, a directory, not a Python interpreter), "
    "$VIRTUAL_ENV or $CONDA_PREFIX without an interpreter"
)
_NO_VERDICT = (
    "no verdict: a check crashed, or could not run because a probe it needs crashed or timed out "
    "(and nothing failed at or above --fail-on)"
)
_NOTHING = "nothing was evaluated: every selected check was skipped (nothing it needs exists here)"

ROWS: List[Row] = [
    Row(
        "*",
        USAGE,
        "usage: an unknown option or a bad option value, --root that is not a directory, --target that is not "
        "a GPU architecture, --output that cannot be written",
        "test_any_2_usage",
    ),
    Row(
        "*",
        INCOMPLETE,
        "bwdoctor itself failed (an internal error; BWDOCTOR_DEBUG=1 shows the traceback)",
        "test_any_3_internal_error",
    ),
    Row("*", INTERRUPTED, "interrupted (Ctrl-C)", "test_any_130_interrupted"),
    Row("check", OK, "every selected check ran and nothing failed at or above --fail-on", "test_check_0_ok"),
    Row("check", GATE, "a finding at or above --fail-on (default error)", "test_check_1_gate_failed"),
    Row(
        "check",
        USAGE,
        _NAMED + "; --config unreadable or with nothing bwdoctor understands; --facts unreadable or not a facts "
        "file; --select/--ignore matching no check",
        "test_check_2_unusable_input",
    ),
    Row("check", INCOMPLETE, _NO_VERDICT, "test_check_3_check_or_probe_failed"),
    Row("check", INCOMPLETE, _NOTHING, "test_check_3_nothing_evaluated"),
    Row(
        "prebuild",
        OK,
        "every selected pre-build check ran and nothing failed at or above --fail-on",
        "test_prebuild_0_ok",
    ),
    Row(
        "prebuild",
        GATE,
        "the build will fail or lack GPU code (a finding at or above --fail-on)",
        "test_prebuild_1_gate_failed",
    ),
    Row("prebuild", USAGE, "--src is not a directory; " + _NAMED, "test_prebuild_2_unusable_input"),
    Row("prebuild", INCOMPLETE, _NO_VERDICT + "; or " + _NOTHING, "test_prebuild_3_no_verdict"),
    Row(
        "facts",
        OK,
        'the facts were gathered (a probe that failed is recorded as {"$unavailable": reason, "$failed": true})',
        "test_facts_0_ok",
    ),
    Row("facts", USAGE, "an unknown fact name; " + _NAMED, "test_facts_2_unusable_input"),
    Row("list", OK, "the list was printed", "test_list_0_ok"),
    Row(
        "explain",
        OK,
        "the article for a topic or check id, or the topics that match the text or log",
        "test_explain_0_ok",
    ),
    Row(
        "explain",
        USAGE,
        "no topic given, a one-word topic that names nothing, --log unreadable",
        "test_explain_2_usage",
    ),
    Row("explain", INCOMPLETE, "the pasted text or log matched no topic", "test_explain_3_no_match"),
    Row("verify-build", OK, "every library of the build has code for the target", "test_verify_build_0_ok"),
    Row("verify-build", GATE, "a library that will load lacks code for the target", "test_verify_build_1_lacks_code"),
    Row(
        "verify-build",
        USAGE,
        "PATH cannot be used: missing, not a wheel, directory, ELF library or installed distribution, no ELF "
        "library in it, none readable (a truncated or corrupt .so); or no target known (pass --target)",
        "test_verify_build_2_unusable",
    ),
    Row(
        "verify-build",
        INCOMPLETE,
        "no verdict: some library could not be read, or no library has GPU code",
        "test_verify_build_3_no_verdict",
    ),
    Row("cubins", OK, "every argument was read", "test_cubins_0_ok"),
    Row("cubins", GATE, "a file could not be read as ELF (not ELF, truncated, corrupt)", "test_cubins_1_unreadable"),
    Row(
        "cubins",
        USAGE,
        "an argument matched nothing (no such file, directory or installed distribution)",
        "test_cubins_2_no_match",
    ),
    Row("kernels", OK, "every argument was read (and every entry's kernels, with --names)", "test_kernels_0_ok"),
    Row(
        "kernels",
        GATE,
        "a file, or with --names an entry's kernels, could not be read (corrupt, or a codec module missing)",
        "test_kernels_1_unreadable",
    ),
    Row(
        "kernels",
        USAGE,
        "an argument matched nothing (no such file, directory or installed distribution)",
        "test_kernels_2_no_match",
    ),
    Row(
        "kernels",
        INCOMPLETE,
        "no target GPU known: units are listed without verdicts (give --target)",
        "test_kernels_3_no_target",
    ),
    Row("recommend", OK, "a plan exists (wheels or a source build)", "test_recommend_0_plan"),
    Row("recommend", GATE, "every way is blocked (e.g. a driver too old for the GPU)", "test_recommend_1_blocked"),
    Row("recommend", USAGE, "a bad option value, or a --facts file that cannot be used", "test_recommend_2_bad_input"),
    Row("symbols", OK, "every file loads", "test_symbols_0_loads"),
    Row(
        "symbols",
        GATE,
        "a file will not load (missing library, symbol version or symbol), or is not ELF",
        "test_symbols_1_will_not_load",
    ),
    Row(
        "symbols",
        USAGE,
        "an argument matched nothing (no such file, directory or installed distribution)",
        "test_symbols_2_no_match",
    ),
    Row("plan", OK, "it fits", "test_plan_0_fits"),
    Row(
        "plan",
        GATE,
        "it does not fit (weights, a KV cache shorter than one --max-model-len sequence, too few GPUs)",
        "test_plan_1_does_not_fit",
    ),
    Row(
        "plan",
        USAGE,
        "no model directory or config.json; a model figure of the wrong type or out of range; an argument out "
        "of range; --tp that does not divide the heads; an unknown --kv-cache-dtype or --vllm-version; no GPU "
        "memory known (pass --gpu-memory); --log unreadable",
        "test_plan_2_bad_input",
    ),
    Row("fleet", OK, "nothing at or above --fail-on on any node or across nodes", "test_fleet_0_ok"),
    Row(
        "fleet",
        GATE,
        "a finding at or above --fail-on on a node or across nodes (a node that did not answer, or whose facts "
        "file cannot be used, is one)",
        "test_fleet_1_gate_failed",
    ),
    Row("fleet", USAGE, "no Ray and no --facts, or no facts file given can be used", "test_fleet_2_unusable_input"),
    Row("fleet", INCOMPLETE, _NO_VERDICT, "test_fleet_3_no_verdict"),
]

COMMANDS = list(COMMAND_MODULES)  # every command name


def rows_for(command: str) -> List[Row]:
    """The command's own rows, then the rows every command shares."""
    return [r for r in ROWS if r.command == command] + [r for r in ROWS if r.command == "*"]


def epilog(command: str) -> str:
    """The "exit codes:" block of a subcommand's --help."""
    import textwrap

    lines = ["exit codes:"]
    for r in sorted(rows_for(command), key=lambda r: r.code):
        text = textwrap.wrap(r.meaning, width=100, initial_indent=f"  {r.code:<4}", subsequent_indent="      ")
        lines += text
    lines.append("(the README's 'Exit codes' section has the table for every command)")
    return "\n".join(lines)


def markdown() -> str:
    """The README table: command, code, meaning, and the test that covers the row."""
    out = ["| command | code | meaning | test |", "|---|---|---|---|"]
    for r in ROWS:
        cmd = "every command" if r.command == "*" else f"`{r.command}`"
        out.append(f"| {cmd} | {r.code} | {r.meaning.replace('|', '/')} | `{r.test}` |")
    return "\n".join(out)
