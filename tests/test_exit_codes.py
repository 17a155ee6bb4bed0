"""Every row of the README "Exit codes" table, each proven by a real invocation of the CLI (the test the row
names), and the table itself checked against bwdoctor/exitcodes.py (which feeds each --help)."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import compile_shared, run_cli
from hosttrees import blackwell_broken

from bwdoctor import exitcodes

HERE = Path(__file__).parent
README = HERE.parent / "README.md"
H100_ROOT = HERE / "fixtures/roots/h100-box"
CUDA = HERE / "fixtures/cuda"
CAPACITY = HERE / "fixtures/capacity"
LLAMA = CAPACITY / "llama-3.1-8b-instruct"


def rc_of(res) -> int:
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode


def facts_file(path: Path, facts: dict) -> str:
    path.write_text(json.dumps({"schema": "bwdoctor.facts/1", "version": "0", "facts": facts}))
    return str(path)


@pytest.fixture(scope="module")
def h100_facts(tmp_path_factory) -> dict:
    """The facts of the captured H100 host (a healthy machine), as `bwdoctor facts` writes them."""
    out = tmp_path_factory.mktemp("h100") / "h100.json"
    res = run_cli("facts", "--root", str(H100_ROOT), "-o", str(out))
    assert res.returncode == 0, res.stderr
    return json.loads(out.read_text())


def failed_probe(doc: dict, name: str) -> dict:
    """A copy of a facts document where one probe timed out (as `bwdoctor facts` records it)."""
    doc = json.loads(json.dumps(doc))
    doc["facts"][name] = {"$unavailable": f"probe {name} timed out after 5 s", "$failed": True}
    return doc


# --- the table ----------------------------------------------------------------------------------------------


def readme_rows() -> list:
    text = README.read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = re.match(r"\| (every command|`[a-z-]+`) \| (\d+) \| (.+) \| `(test_\w+)` \|$", line)
        if m:
            cmd = "*" if m.group(1) == "every command" else m.group(1).strip("`")
            rows.append((cmd, int(m.group(2)), m.group(3), m.group(4)))
    return rows


def test_readme_table_is_the_one_behind_help_and_every_row_has_a_test():
    rows = readme_rows()
    assert rows, "no exit-code table in the README"
    assert exitcodes.markdown() in README.read_text(), "README table differs from bwdoctor/exitcodes.py"
    assert [(r[0], r[1], r[3]) for r in rows] == [(r.command, r.code, r.test) for r in exitcodes.ROWS]
    defined = {n for n, v in globals().items() if n.startswith("test_") and callable(v)}
    for cmd, code, _meaning, test in rows:
        assert test in defined, f"README row {cmd} {code} names {test}, which tests/test_exit_codes.py lacks"
        want = "any" if cmd == "*" else cmd.replace("-", "_")
        assert test.startswith(f"test_{want}_{code}_"), f"{test} does not name its row ({cmd}, {code})"
    assert {r[0] for r in rows} == {"*", *exitcodes.COMMANDS}


@pytest.mark.parametrize("command", exitcodes.COMMANDS)
def test_help_lists_exit_codes_and_defaults(command):
    res = run_cli(command, "--help")
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "exit codes:" in text
    for row in exitcodes.rows_for(command):
        assert " ".join(row.meaning.split())[:60] in text, (command, row)
    if command in ("check", "prebuild", "plan", "fleet"):
        assert "(default" in text


# --- every command -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        *[([c, "--no-such-option"], "error:") for c in exitcodes.COMMANDS],
        (["check", "--root", "/nonexistent-bwdoctor-root"], "not a directory"),
        (["check", "--target", "hopper"], "not a GPU architecture"),
        (["list", "-o", "/nonexistent-bwdoctor-dir/out.json"], "--output"),
    ],
)
def test_any_2_usage(args, needle):
    res = run_cli(*args)
    assert rc_of(res) == 2 and needle in res.stderr


def _main_with(tmp_path: Path, raised: str) -> object:
    """Run the real entry point in a child whose `list` view raises `raised` (an internal bug, Ctrl-C)."""
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""\
        import sys
        import bwdoctor.commands.facts as views

        def broken(args):
            raise {raised}

        views.run_list = broken
        from bwdoctor.cli import main
        sys.exit(main(["list"]))
        """)
    )
    import subprocess

    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)


def test_any_3_internal_error(tmp_path):
    res = _main_with(tmp_path, "AttributeError('a bug')")
    assert rc_of(res) == 3 and "internal error: AttributeError: a bug" in res.stderr and res.stdout == ""


def test_any_130_interrupted(tmp_path):
    res = _main_with(tmp_path, "KeyboardInterrupt")
    assert rc_of(res) == 130 and "interrupted" in res.stderr


# --- check -------------------------------------------------------------------------------------------------


def test_check_0_ok():
    res = run_cli("check", "--format", "json", "--root", str(H100_ROOT))
    report = json.loads(res.stdout)
    assert rc_of(res) == 0, [f for f in report["findings"] if f["status"] in ("fail", "error")]
    assert report["summary"]["error"] == 0 and report["summary"]["pass"] > 0


def test_check_1_gate_failed(tmp_path):
    root = blackwell_broken(tmp_path / "bw")
    res = run_cli("check", "--format", "json", "--root", str(root))
    assert rc_of(res) == 1 and json.loads(res.stdout)["summary"]["fail_error"] >= 1


def _script(path: Path, body: str) -> str:
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize(
    "case",
    [
        "python-ls",
        "python-dir",
        "python-fails",
        "python-missing",
        "virtual-env",
        "conda-prefix",
        "config-missing",
        "config-not-understood",
        "facts-missing",
        "facts-not-facts",
        "select-nothing",
    ],
)
def test_check_2_unusable_input(tmp_path, case):
    env = {}
    if case == "python-ls":
        args, needle = ["--python", "/bin/ls"], "--python /bin/ls: cannot be used"
    elif case == "python-dir":
        args, needle = ["--python", str(tmp_path)], "is a directory"
    elif case == "python-fails":
        fails = _script(tmp_path / "python3", "#!/bin/sh\necho broken >&2\nexit 1\n")
        args, needle = ["--python", fails], "exited with 1"
    elif case == "python-missing":
        args, needle = ["--python", str(tmp_path / "nope" / "python")], "no such file"
    elif case == "virtual-env":
        args, needle, env = [], "VIRTUAL_ENV=", {"VIRTUAL_ENV": str(tmp_path / "gone"), "CONDA_PREFIX": ""}
    elif case == "conda-prefix":
        args, needle, env = [], "CONDA_PREFIX=", {"VIRTUAL_ENV": "", "CONDA_PREFIX": str(tmp_path / "gone")}
    elif case == "config-missing":
        args, needle = ["--config", str(tmp_path / "missing.yaml")], "could not be read"
    elif case == "config-not-understood":
        (tmp_path / "notes.txt").write_text("hello, this is not a serve config\n")
        args, needle = ["--config", str(tmp_path / "notes.txt")], "nothing in it is a vLLM serve config"
    elif case == "facts-missing":
        args, needle = ["--facts", str(tmp_path / "missing.json")], "cannot read facts file"
    elif case == "facts-not-facts":
        (tmp_path / "list.json").write_text("[1, 2]")
        args, needle = ["--facts", str(tmp_path / "list.json")], "must hold a JSON object"
    else:
        args, needle = ["--select", "no-such-check"], "no check matches"
    res = run_cli("check", *args, env=env)
    assert rc_of(res) == 2 and needle in res.stderr, res.stderr
    assert res.stdout == ""  # no report that a CI step could mistake for a result


PLUGIN = """
from bwdoctor.registry import check

@check("BW985", "plugin-crashes", severity="error", kb="peermem-nccl-hang")
def plugin_crashes(kernel_release):
    return kernel_release.no_such_attribute
"""


@pytest.fixture
def crashing_plugin(tmp_path) -> dict:
    (tmp_path / "bwcrashplugin.py").write_text(PLUGIN)
    di = tmp_path / "bwcrashplugin-0.1.dist-info"
    di.mkdir()
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: bwcrashplugin\nVersion: 0.1\n")
    (di / "entry_points.txt").write_text("[bwdoctor.checks]\ncrash = bwcrashplugin\n")
    return {"PYTHONPATH": str(tmp_path), "BWDOCTOR_PLUGINS": "crash"}


def test_check_3_check_or_probe_failed(tmp_path, h100_facts, crashing_plugin):
    # a check that raises (an AttributeError in a plugin) on a healthy machine
    res = run_cli("check", "--format", "json", "--root", str(H100_ROOT), env=crashing_plugin)
    report = json.loads(res.stdout)
    assert rc_of(res) == 3 and report["summary"]["check_crashed"] == 1
    assert "1 check(s) crashed" in res.stderr
    # checks whose probe timed out on the machine the facts came from
    path = tmp_path / "timed-out.json"
    path.write_text(json.dumps(failed_probe(h100_facts, "nvidia_driver")))
    res = run_cli("check", "--format", "json", "--facts", str(path))
    report = json.loads(res.stdout)
    assert rc_of(res) == 3 and report["summary"]["probe_failed"] >= 1
    errs = [f for f in report["findings"] if f["status"] == "error"]
    assert errs and all(f["evidence"]["cause"] == "probe-failed" for f in errs)
    text = run_cli("check", "--facts", str(path))
    assert rc_of(text) == 3 and re.search(r"Summary: \d+ could not run", text.stdout)
    junit = run_cli("check", "--format", "junit", "--facts", str(path))
    assert rc_of(junit) == 3 and 'type="probe-failed"' in junit.stdout
    sarif = json.loads(run_cli("check", "--format", "sarif", "--facts", str(path)).stdout)
    assert any(r["properties"]["status"] == "error" and r["level"] == "error" for r in sarif["runs"][0]["results"])
    # a definite gate failure still says 1 when another check could not run
    root = blackwell_broken(tmp_path / "bw")
    res = run_cli("facts", "--root", str(root), "-o", str(tmp_path / "bw.json"))
    assert res.returncode == 0, res.stderr
    both = failed_probe(json.loads((tmp_path / "bw.json").read_text()), "libcuda")
    (tmp_path / "both.json").write_text(json.dumps(both))
    res = run_cli("check", "--format", "json", "--facts", str(tmp_path / "both.json"))
    summary = json.loads(res.stdout)["summary"]
    assert rc_of(res) == 1 and summary["fail_error"] >= 1 and summary["probe_failed"] >= 1


def test_check_3_nothing_evaluated(tmp_path):
    unrelated = facts_file(tmp_path / "unrelated.json", {"kernel_release": "6.8.0-45-generic"})
    res = run_cli("check", "--format", "json", "--facts", unrelated, "--select", "gpu-code")
    report = json.loads(res.stdout)
    assert rc_of(res) == 3 and report["findings"] and all(f["status"] == "skip" for f in report["findings"])


@pytest.mark.parametrize("command", ["check", "prebuild", "recommend"])
def test_2_a_facts_file_with_no_facts_at_all(tmp_path, command):
    """An empty 'facts' object would skip every check: a named input that says nothing is refused, not a green."""
    empty = facts_file(tmp_path / "empty.json", {})
    res = run_cli(command, "--facts", empty)
    assert rc_of(res) == 2 and "holds no facts" in res.stderr


# --- prebuild ----------------------------------------------------------------------------------------------


def build_env(**over) -> dict:
    env = {
        "max_jobs": 2,
        "nvcc_threads": None,
        "torch_cuda_arch_list": "12.0",
        "cmake_cuda_architectures": None,
        "cuda_home": None,
        "cmake_cuda_compiler": None,
        "vllm_flash_attn_version": None,
        "mem_total": 64 << 30,
        "mem_available": 60 << 30,
        "cores": 8,
        "build_dir": "/tmp",
        "disk": {"build_dir": {"path": "/tmp", "free": 500 << 30}, "tmp": {"path": "/tmp", "free": 500 << 30}},
        "gcc": {"path": "/usr/bin/gcc", "version": "12.2.0"},
        "ccache": None,
        "nvcc": None,
        "nvcc_gcc_max": None,
        "nvcc_on_path": None,
        "nvcc_realpaths": {},
        "python_include": "/usr/include/python3.11",
        "python_h": True,
    }
    env.update(over)
    return env


def test_prebuild_0_ok(tmp_path):
    f = facts_file(tmp_path / "f.json", {"targets": ["sm_120"], "build_env": build_env()})
    res = run_cli("prebuild", "--facts", f, "--select", "BW701,BW704,BW708")
    assert rc_of(res) == 0, res.stdout


def test_prebuild_1_gate_failed(tmp_path):
    f = facts_file(tmp_path / "f.json", {"targets": ["sm_120"], "build_env": build_env(torch_cuda_arch_list="9.0")})
    res = run_cli("prebuild", "--facts", f, "--select", "BW701")
    assert rc_of(res) == 1 and "BW701" in res.stdout


@pytest.mark.parametrize("case", ["src", "python"])
def test_prebuild_2_unusable_input(tmp_path, case):
    args = ["--src", str(tmp_path / "no-tree")] if case == "src" else ["--python", "/bin/ls"]
    res = run_cli("prebuild", *args)
    assert rc_of(res) == 2 and ("not a directory" in res.stderr or "cannot be used" in res.stderr)


def test_prebuild_3_no_verdict(tmp_path):
    doc = {"schema": "bwdoctor.facts/1", "version": "0", "facts": {"targets": ["sm_120"], "build_env": {}}}
    doc = failed_probe(doc, "build_env")
    (tmp_path / "f.json").write_text(json.dumps(doc))
    res = run_cli("prebuild", "--facts", str(tmp_path / "f.json"), "--select", "BW701,BW704")
    assert rc_of(res) == 3 and "could not run" in res.stdout
    unrelated = facts_file(tmp_path / "unrelated.json", {"kernel_release": "6.8.0-45-generic"})
    res = run_cli("prebuild", "--facts", unrelated, "--select", "BW701")
    assert rc_of(res) == 3


# --- facts, list, explain ------------------------------------------------------------------------------------


def test_facts_0_ok():
    res = run_cli("facts", "kernel_release", "host", "--root", str(H100_ROOT))
    assert rc_of(res) == 0 and json.loads(res.stdout)["facts"]["kernel_release"]


@pytest.mark.parametrize("args", [["no_such_fact"], ["python_env", "--python", "/bin/ls"]])
def test_facts_2_unusable_input(args):
    res = run_cli("facts", *args)
    assert rc_of(res) == 2 and res.stdout == ""


def test_list_0_ok():
    res = run_cli("list", "checks", "--format", "json")
    assert rc_of(res) == 0 and json.loads(res.stdout)["items"]


@pytest.mark.parametrize("args", [["undefined-symbol", "--no-machine"], ["BW201", "--no-machine"]])
def test_explain_0_ok(args):
    res = run_cli("explain", *args)
    assert rc_of(res) == 0 and res.stdout


@pytest.mark.parametrize("args", [[], ["nosuchtopicword"], ["--log", "/nonexistent-bwdoctor.log"]])
def test_explain_2_usage(args):
    res = run_cli("explain", *args)
    assert rc_of(res) == 2 and res.stderr


def test_explain_3_no_match():
    res = run_cli("explain", "--no-machine", "the weather was fine and nothing broke at all today")
    assert rc_of(res) == 3


# --- verify-build, cubins, symbols ----------------------------------------------------------------------------


def test_verify_build_0_ok():
    res = run_cli("verify-build", str(CUDA / "sm120.so"), "--target", "sm_120")
    assert rc_of(res) == 0


def test_verify_build_1_lacks_code():
    res = run_cli("verify-build", str(CUDA / "sm120.so"), "--target", "sm_90")
    assert rc_of(res) == 1


@pytest.mark.parametrize("case", ["missing", "empty-dir", "corrupt-so", "no-target"])
def test_verify_build_2_unusable(tmp_path, case):
    target = ["--target", "sm_120"]
    if case == "missing":
        path = str(tmp_path / "nope.whl")
    elif case == "empty-dir":
        path = str(tmp_path)
    elif case == "corrupt-so":
        path = str(tmp_path / "libbroken.so")
        Path(path).write_bytes((CUDA / "sm120.so").read_bytes()[:3000])
    else:
        path, target = str(CUDA / "sm120.so"), []
    res = run_cli("verify-build", path, *target, env={"BWDOCTOR_TARGET": ""})
    assert rc_of(res) == 2 and res.stderr.startswith("bwdoctor: ")


def test_verify_build_3_no_verdict(tmp_path):
    part = tmp_path / "part"
    part.mkdir()
    (part / "sm120.so").write_bytes((CUDA / "sm120.so").read_bytes())
    (part / "libtrunc.so").write_bytes((CUDA / "sm120.so").read_bytes()[:3000])
    res = run_cli("verify-build", str(part), "--target", "sm_120")
    assert rc_of(res) == 3  # one library has the code, the other could not be read: no verdict for the build
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    compile_shared(cpu / "libcpu.so", "int f(void) { return 1; }\n")
    res = run_cli("verify-build", str(cpu), "--target", "sm_120")
    assert rc_of(res) == 3


def test_cubins_0_ok():
    res = run_cli("cubins", str(CUDA / "sm120.so"), str(CUDA / "mix.so"))
    assert rc_of(res) == 0


def test_cubins_1_unreadable(tmp_path):
    (tmp_path / "libtrunc.so").write_bytes((CUDA / "sm120.so").read_bytes()[:3000])
    res = run_cli("cubins", str(tmp_path / "libtrunc.so"))
    assert rc_of(res) == 1


def test_cubins_2_no_match(tmp_path):
    res = run_cli("cubins", str(tmp_path / "nothing-here.so"))
    assert rc_of(res) == 2


def test_symbols_0_loads(tmp_path):
    compile_shared(tmp_path / "libok.so", "int f(void) { return 1; }\n")
    res = run_cli("symbols", str(tmp_path / "libok.so"))
    assert rc_of(res) == 0


def test_symbols_1_will_not_load(tmp_path):
    compile_shared(tmp_path / "libdep.so", "int dep(void) { return 2; }\n")
    compile_shared(
        tmp_path / "libneeds.so", "int dep(void);\nint f(void) { return dep(); }\n", f"-L{tmp_path}", "-ldep"
    )
    os.remove(tmp_path / "libdep.so")
    res = run_cli("symbols", str(tmp_path / "libneeds.so"))
    assert rc_of(res) == 1 and "libdep.so" in res.stdout


def test_symbols_2_no_match(tmp_path):
    res = run_cli("symbols", str(tmp_path / "nothing-here.so"))
    assert rc_of(res) == 2


# --- plan --------------------------------------------------------------------------------------------------

PLAN = ["plan", "--model", str(LLAMA), "--gpu-memory", "80", "--gpu-count", "1"]


def test_plan_0_fits():
    res = run_cli(*PLAN)
    assert rc_of(res) == 0 and "fits" in res.stdout


def test_plan_1_does_not_fit():
    # issue 10517's run: vLLM 0.6.4 on a 24 GB RTX 3090 refused --max-model-len 29000 (its log is the fixture)
    res = run_cli(
        "plan",
        "--model",
        str(LLAMA),
        "--gpu-memory",
        "23.58",
        "--gpu-count",
        "1",
        "--max-model-len",
        "29000",
        "--vllm-version",
        "0.6.4",
    )
    assert rc_of(res) == 1 and "DOES NOT FIT" in res.stdout


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--tp", "3"], "do not divide by 3"),
        (["--max-model-len", "-5"], "--max-model-len -5 is out of range"),
        (["--kv-cache-dtype", "fp9"], "'fp9' is not a KV-cache dtype"),
        (["--vllm-version", "9.9.9"], "unknown vLLM release"),
        (["--gpu-memory-utilization", "nan"], "out of range"),
    ],
)
def test_plan_2_bad_input(tmp_path, extra, needle):
    res = run_cli(*PLAN, *extra)
    assert rc_of(res) == 2 and needle in res.stderr
    res = run_cli("plan", "--model", str(tmp_path), "--gpu-memory", "80")
    assert rc_of(res) == 2 and "config" in res.stderr


# --- fleet -------------------------------------------------------------------------------------------------


def _nodes(tmp_path: Path, *docs: dict) -> list:
    paths = []
    for i, doc in enumerate(docs):
        p = tmp_path / f"node{i}.json"
        p.write_text(json.dumps(doc))
        paths.append(str(p))
    return paths


def test_fleet_0_ok(tmp_path, h100_facts):
    res = run_cli("fleet", "--facts", *_nodes(tmp_path, h100_facts, h100_facts))
    assert rc_of(res) == 0


def test_fleet_1_gate_failed(tmp_path, h100_facts):
    other = json.loads(json.dumps(h100_facts))
    other["facts"]["nvidia_driver"]["version"] = "550.54.14"  # drift: one node on another driver
    res = run_cli("fleet", "--facts", *_nodes(tmp_path, h100_facts, other), "--fail-on", "warning")
    assert rc_of(res) == 1
    # one node's facts file cannot be read: that node did not answer (the others are still evaluated)
    res = run_cli("fleet", "--facts", *_nodes(tmp_path, h100_facts), str(tmp_path / "missing.json"))
    assert rc_of(res) == 1


def test_fleet_2_unusable_input(tmp_path):
    (tmp_path / "broken.json").write_text("{nope")
    res = run_cli("fleet", "--facts", str(tmp_path / "missing.json"), str(tmp_path / "broken.json"))
    assert rc_of(res) == 2 and "cannot read facts file" in res.stderr and "not valid JSON" in res.stderr


def test_fleet_3_no_verdict(tmp_path, h100_facts):
    broken = failed_probe(h100_facts, "nvidia_driver")
    res = run_cli("fleet", "--facts", *_nodes(tmp_path, broken, broken))
    assert rc_of(res) == 3


# --- the engine's distinction: a probe that failed is not "does not apply here" ------------------------------


def test_failed_fact_is_an_error_and_an_absent_one_a_skip():
    from bwdoctor import engine, registry
    from bwdoctor.model import Unavailable, fact_from_json, fact_to_json, probe_failure
    from bwdoctor.registry import check

    @check("BW993", "needs-gpus", severity="error", kb="x")
    def needs_gpus(gpus):
        return None

    @check("BW994", "optional-gpus", severity="error", kb="x", optional=("gpus",))
    def optional_gpus(gpus):
        return None

    specs = [getattr(needs_gpus, registry.CHECK_ATTR), getattr(optional_gpus, registry.CHECK_ATTR)]
    absent = engine.evaluate(specs, {"gpus": Unavailable("no NVIDIA GPU")})
    assert [f.status for f in absent] == ["skip", "pass"] and engine.exit_code(absent) == 0
    failed = engine.evaluate(specs, {"gpus": probe_failure("probe gpus timed out after 5 s")})
    assert [f.status for f in failed] == ["error", "error"] and engine.exit_code(failed) == 3
    assert all(f.evidence["cause"] == "probe-failed" and "timed out" in f.message for f in failed)
    # the failure survives a facts file round trip; an old facts file's plain form stays an honest absence
    assert fact_from_json(fact_to_json(probe_failure("x"))) == probe_failure("x")
    assert fact_from_json({"$unavailable": "x"}) == Unavailable("x")


def test_a_probe_whose_input_failed_fails_too():
    from bwdoctor import engine
    from bwdoctor.context import Context
    from bwdoctor.model import ProbeSpec, Unavailable
    from bwdoctor.registry import Registry

    def boom(ctx):
        raise OSError("device vanished")

    def downstream(ctx, first):
        return first if isinstance(first, Unavailable) else {"ok": True}

    def honest(ctx):
        return Unavailable("not installed")

    reg = Registry()
    reg.probes["first"] = ProbeSpec("first", boom, (), 2.0, "")
    reg.probes["second"] = ProbeSpec("second", downstream, ("first",), 2.0, "")
    reg.probes["third"] = ProbeSpec("third", honest, (), 2.0, "")
    facts, _ = engine.gather(reg, Context(), ["second", "third"])
    assert facts["first"].failed and "device vanished" in facts["first"].reason
    assert facts["second"].failed
    assert isinstance(facts["third"], Unavailable) and not facts["third"].failed


# --- kernels, recommend ---------------------------------------------------------------------------------------


def test_kernels_0_ok():
    res = run_cli("kernels", str(CUDA / "units_80_120.so"), "--target", "sm_120", "--names")
    assert rc_of(res) == 0


def test_kernels_1_unreadable(tmp_path):
    (tmp_path / "libtrunc.so").write_bytes((CUDA / "sm120.so").read_bytes()[:3000])
    res = run_cli("kernels", str(tmp_path / "libtrunc.so"), "--target", "sm_120")
    assert rc_of(res) == 1


def test_kernels_2_no_match(tmp_path):
    res = run_cli("kernels", str(tmp_path / "nothing-here.so"), "--target", "sm_120")
    assert rc_of(res) == 2


def test_kernels_3_no_target():
    res = run_cli("kernels", str(CUDA / "units_80_120.so"), env={"BWDOCTOR_TARGET": ""})
    assert rc_of(res) == 3 and "no target GPU known" in res.stderr


def test_recommend_0_plan():
    res = run_cli("recommend", "--target", "sm_120", "--driver", "570.153.02", "--platform", "linux_x86_64")
    assert rc_of(res) == 0


def test_recommend_1_blocked():
    res = run_cli("recommend", "--target", "sm_120", "--driver", "550.54.15", "--platform", "linux_x86_64")
    assert rc_of(res) == 1


def test_recommend_2_bad_input():
    res = run_cli("recommend", "--target", "sm_120", "--driver", "not-a-version")
    assert rc_of(res) == 2


@pytest.mark.parametrize("command", ["cubins", "kernels"])
def test_a_stale_virtual_env_matters_only_when_a_distribution_is_named(tmp_path, command):
    """Reading a named file does not use the active environment; finding a distribution by name does."""
    env = {"VIRTUAL_ENV": str(tmp_path / "gone"), "CONDA_PREFIX": ""}
    res = run_cli(command, str(CUDA / "units_80_120.so"), "--target", "sm_120", env=env)
    assert rc_of(res) == 0 and "VIRTUAL_ENV" not in res.stderr
    res = run_cli(command, "torch", "--target", "sm_120", env=env)
    assert rc_of(res) == 2 and "VIRTUAL_ENV=" in res.stderr


def test_a_reader_that_goes_away_is_no_traceback_and_no_failure():
    """`bwdoctor list kb | head -c 10`: the pipe closes while bwdoctor still writes (a 4 KiB pipe, 8 KiB of output);
    the command ends quietly with its own code, no traceback and no "Exception ignored" from a last flush."""
    import fcntl
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    except OSError:
        pytest.skip("the pipe size cannot be set here")
    proc = subprocess.Popen([sys.executable, "-m", "bwdoctor", "list", "kb"], stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    os.read(read_end, 10)
    os.close(read_end)  # the reader goes away with most of the output unread
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err


def test_output_to_a_full_device_is_a_clear_error():
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "bwdoctor", "list", "kb"],
        stdout=open("/dev/full", "w"),
        stderr=subprocess.PIPE,
        timeout=60,
    )
    assert res.returncode == 3 and b"No space left on device" in res.stderr and b"Traceback" not in res.stderr
