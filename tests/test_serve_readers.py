"""Readers give argv words and env vars at the right file:line:column, and never crash on bad input."""

import json
from pathlib import Path

import pytest

from bwdoctor.checks import serve as serve_checks
from bwdoctor.context import Context
from bwdoctor.probes.serve import serve_configs
from bwdoctor.serve.config import ServeConfig
from bwdoctor.serve.readers import read_config, read_process
from bwdoctor.testing import run_check

F = Path(__file__).parent / "fixtures" / "serve"


def one(text, name="x.sh", **kw):
    (c,) = read_config(name, text.encode(), **kw)
    return c


def test_shell_defaults_exports_arrays_and_continuations():
    c = one(
        "A=${A:-triton}\nexport VLLM_X=1\nARGS=(--max-num-seqs 8)\n"
        'exec "$PY" -m vllm.entrypoints.openai.api_server \\\n  --attention-backend "$A" "${ARGS[@]}" 2>&1 &\n'
    )
    assert c.launcher == "api_server"
    assert [(t.text, t.line, t.column) for t in c.argv] == [
        ("--attention-backend", 5, 3),
        ("triton", 5, 23),
        ("--max-num-seqs", 3, 7),
        ("8", 3, 22),
    ]
    assert c.argv[1].origin == ("x.sh", 1, 8)
    assert [(e.name, e.value, e.line) for e in c.env] == [("VLLM_X", "1", 2)]


def test_shell_ignores_echo_and_heredoc():
    text = 'echo "vllm serve --bad"\ncat <<EOF\nvllm serve --worse\nEOF\nvllm serve m --port 1\n'
    (c,) = read_config("x.sh", text.encode())
    assert [t.text for t in c.argv] == ["m", "--port", "1"] and c.argv[0].line == 5


def test_systemd_quoted_environment_and_environment_file(tmp_path):
    envf = tmp_path / "vllm.env"
    envf.write_text("# c\nVLLM_B=2\n")
    unit = tmp_path / "v.service"
    unit.write_text(
        f'[Service]\nEnvironment="VLLM_A=1" "HF_HOME=/h"\nEnvironmentFile=-{envf}\n'
        f"EnvironmentFile=-/nonexistent\nExecStart=/usr/bin/vllm serve m \\\n  --port $PORT\n"
    )
    (c,) = read_config(str(unit), unit.read_bytes(), read=lambda p: Path(p).read_bytes())
    assert [(e.name, e.value, e.line, e.column) for e in c.env] == [
        ("VLLM_A", "1", 2, 14),
        ("HF_HOME", "/h", 2, 25),
        ("VLLM_B", "2", 2, 1),
    ][:2] + [("VLLM_B", "2", 2, 1)]
    assert c.env[2].path == str(envf)
    assert [(t.text, t.line) for t in c.argv] == [("m", 5), ("--port", 6), ("$PORT", 6)]
    assert c.errors == []


def test_compose_string_and_list_commands_have_positions():
    c = one((F / "seed001/before/docker-compose.yml").read_text(), "dc.yml")
    q = next(t for t in c.argv if t.text == "bitsandbytes")
    assert (q.line, q.column) == (19, 22)
    (a,) = read_config("dc.yml", (F / "seed001/after/docker-compose.yml").read_bytes())
    tp = a.argv[a.argv.index(next(t for t in a.argv if t.text == "--tensor-parallel-size")) + 1]
    assert (tp.text, tp.line, tp.column) == ("2", 25, 10)


def test_k8s_and_vllm_yaml():
    (k,) = read_config("k.yaml", (F / "valid/k8s.yaml").read_bytes())
    assert (
        k.launcher == "image"
        and (k.argv[0].line, k.argv[0].column) == (11, 19)
        and {e.name for e in k.env} >= {"HF_HUB_OFFLINE"}
    )
    (y,) = read_config("c.yaml", (F / "valid/config.yaml").read_bytes())
    assert [t.text for t in y.argv][:2] == ["--model", "/models/qwen"]


def test_process_cmdline_columns():
    (c,) = read_process(
        b"python3\0-m\0vllm.entrypoints.openai.api_server\0--port\0001\0",
        b"VLLM_A=1\0",
        "/proc/7/cmdline",
        "/proc/7/environ",
    )
    assert [(t.text, t.column) for t in c.argv] == [("--port", 47), ("1", 54)] and c.env[0].name == "VLLM_A"


def test_bad_input_gives_clear_errors():
    (c,) = read_config("bin.sh", b"vllm serve\0x")
    assert "NUL byte" in c.errors[0]
    (c,) = read_config("big.sh", b"#" * (10 * 1024 * 1024))
    assert "too large" in c.errors[0]
    cs = read_config("latin.sh", "vllm serve m --port 1 # caf\xe9\n".encode("latin-1"))
    assert "not valid UTF-8" in cs[0].errors[0] and cs[0].launcher == "vllm serve"
    (c,) = read_config("bad.yaml", b"services: [\n")
    assert "invalid YAML" in c.errors[0]
    assert read_config("unterminated.sh", b'vllm serve "m --port 1\n')[0].launcher == "vllm serve"


def test_json_round_trip():
    (c,) = read_config("x.sh", (F / "seed002/before/serve_glm47_nvfp4_vllm.sh").read_bytes())
    back = ServeConfig.from_json(json.loads(json.dumps(c.to_json())))
    assert back.to_json() == c.to_json() and back.argv[11].origin == c.argv[11].origin


def test_probe_reads_units_and_processes_under_root(tmp_path):
    unit = tmp_path / "etc/systemd/system/vllm.service"
    unit.parent.mkdir(parents=True)
    unit.write_bytes((F / "seed000/vllm.service.workaround").read_bytes())
    proc = tmp_path / "proc/42"
    proc.mkdir(parents=True)
    (proc / "cmdline").write_bytes(b"vllm\0serve\0m\0--swap-space\0004\0")
    (proc / "environ").write_bytes(b"VLLM_ATTENTION_BACKEND=FLASHINFER\0")
    (tmp_path / "proc/43").mkdir()
    (tmp_path / "proc/43/cmdline").write_bytes(b"bash\0")
    ctx = Context(root=tmp_path, env={}, options={"vllm_version": "0.33.0"})
    fact = serve_configs(ctx)
    assert [c["kind"] for c in fact["configs"]] == ["systemd", "process"]
    findings = run_check(
        serve_checks.serve_flags_known, {"serve_configs": fact, "distributions": [], "targets": ["sm_120"], "gpus": []}
    )
    msgs = [(f.status, f.location.path if f.location else None, f.message) for f in findings]
    assert any(s == "fail" and p == "/proc/42/cmdline" and "removed in vLLM 0.18.0" in m for s, p, m in msgs)
    env = run_check(
        serve_checks.serve_env_read, {"serve_configs": fact, "distributions": [], "targets": ["sm_120"], "gpus": []}
    )
    assert any(f.location and f.location.path == "/proc/42/environ" for f in env)


def test_checks_use_installed_vllm_version_and_the_newest_without_one():
    (c,) = read_config("u.service", (F / "seed000/vllm.service.workaround").read_bytes())
    fact = {"configs": [c.to_json()]}
    gpus = [{"index": 0, "arch": "sm_120", "cc": [12, 0], "mem_total": 97887 * 2**20}]
    res = run_check(
        serve_checks.serve_workaround_flags,
        {
            "serve_configs": fact,
            "distributions": [{"name": "vllm", "version": "0.15.1"}],
            "targets": {"$unavailable": "x"},
            "gpus": gpus,
        },
    )
    assert [(f.status, f.location.line) for f in res] == [("fail", 11), ("fail", 7), ("fail", 14), ("fail", 13)]
    res = run_check(
        serve_checks.serve_workaround_flags,
        {"serve_configs": fact, "distributions": [], "targets": ["sm_120"], "gpus": gpus},
    )
    # without vLLM installed (and no image tag) the newest known release is linted for, and each finding says so
    assert res and all(f.status == "fail" for f in res)
    assert all("the newest release bwdoctor knows" in f.message for f in res)
    assert all(f.evidence["vllm_from"].startswith("vLLM is not installed") for f in res)


def _cuda_binaries(elf, ptx):
    # arch lists of vllm/_C.abi3.so as the fat-binary scan of the PyPI wheels reports them
    # (0.9.0: no sm_120 cubin, PTX up to 9.0; 0.9.2+: sm_120 cubin) — shared/research §5.2
    return {"vllm": {"version": "x", "files": [{"path": "/site/vllm/_C.abi3.so", "fatbin": {"elf": elf, "ptx": ptx}}]}}


def test_workaround_flags_are_kept_when_vllm_has_no_sm120_code():
    (c,) = read_config("u.service", (F / "seed000/vllm.service.workaround").read_bytes())
    facts = {
        "serve_configs": {"configs": [c.to_json()], "vllm_version": "0.15.1"},
        "distributions": [],
        "targets": ["sm_120"],
        "gpus": [],
    }
    native = run_check(
        serve_checks.serve_workaround_flags,
        {**facts, "cuda_binaries": _cuda_binaries(["sm_90", "sm_100", "sm_120"], ["compute_90"])},
    )
    assert [f.location.line for f in native if f.status == "fail"] == [11, 7, 14, 13]
    # a build without sm_120 cubins and with PTX only for sm_52 can still JIT, so: only a build with
    # nothing usable for sm_120 keeps the workarounds quiet
    none = run_check(
        serve_checks.serve_workaround_flags,
        {**facts, "cuda_binaries": _cuda_binaries(["sm_80", "sm_90", "sm_100"], [])},
    )
    assert [f.location.line for f in none if f.status == "fail"] == [11]  # only the forced awq remains


HOSTILE = [
    b"vllm serve m --port ${",
    b"vllm serve m \\",
    b"A=$(\nvllm serve",
    b"vllm serve 'unterminated",
    b"X=${X:-${Y:-${Z:-deep}}}\nvllm serve $X",
    b"vllm serve m <<",
    b"ARR=(\nvllm serve m",
    b"[" * 5000,
    b"services:\n  a: &a [*a]\n",
    b"a: &a [" + b"*a, " * 50 + b"]\nkind: Pod\n",
    "vllm serve m --x \u00e9\u2028".encode(),
    b"\xff\xfe\x00v",
    b"ExecStart=\\\n\\\n",
]


@pytest.mark.parametrize("data", HOSTILE)
@pytest.mark.parametrize("name", ["s.sh", "u.service", "c.yaml", "docker-compose.yml", ".env"])
def test_hostile_input_never_raises(name, data):
    out = read_config(name, data)
    assert isinstance(out, list)
    for c in out:
        json.dumps(c.to_json())


def test_probe_follows_config_file_and_reads_local_model(tmp_path):
    model = tmp_path / "models/glm"
    model.mkdir(parents=True)
    (model / "config.json").write_bytes((F / "models/glm-4.7-nvfp4/config.json").read_bytes())
    (tmp_path / "extra.yaml").write_text("max-num-seqz: 64\nenable-prefix-caching: false\n")
    script = tmp_path / "serve.sh"
    script.write_text("vllm serve /models/glm --config extra.yaml -tp 4 --gpu-memory-utilization 0.9\n")
    fact = serve_configs(Context(root=tmp_path, env={}, configs=[str(script)]))
    (c,) = fact["configs"]
    assert c["includes"][0]["kind"] == "vllm-yaml" and c["model"]["vocab_size"] == 151552
    facts = {
        "serve_configs": fact,
        "distributions": [{"name": "vllm", "version": "0.15.1"}],
        "targets": ["sm_120"],
        "gpus": [{"index": i, "arch": "sm_120", "mem_total": 97887 * 2**20} for i in range(4)],
    }
    flags = [f for f in run_check(serve_checks.serve_flags_known, facts) if f.status == "fail"]
    assert [(Path(f.location.path).name, f.location.line) for f in flags] == [("extra.yaml", 1)]
    assert "did you mean --max-num-seqs" in flags[0].message
    ignored = [f for f in run_check(serve_checks.serve_config_flag_used, facts) if f.status == "fail"]
    assert [(Path(f.location.path).name, f.location.line) for f in ignored] == [("extra.yaml", 2)]
    sampler = [f for f in run_check(serve_checks.serve_sampler_warmup, facts) if f.status == "fail"]
    assert [(Path(f.location.path).name, f.location.line) for f in sampler] == [("serve.sh", 1)]
