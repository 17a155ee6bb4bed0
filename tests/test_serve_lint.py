"""The seeds' serve setups: every lesson is a finding on the "before" file at its line; "after" is clean."""

import json
from pathlib import Path

import pytest

from bwdoctor.capacity.model import facts_from_config
from bwdoctor.serve.config import ServeConfig, Token
from bwdoctor.serve.lint import Machine, lint
from bwdoctor.serve.memory import check_memory, model_to_json
from bwdoctor.serve.readers import read_config
from bwdoctor.serve.releases import release_for

F = Path(__file__).parent / "fixtures" / "serve"
RTX_PRO_6000 = 97887 * 2**20
RTX_5090 = 32607 * 2**20
GLM = model_to_json(facts_from_config(json.loads((F / "models/glm-4.7-nvfp4/config.json").read_text()), "glm"))


def run(rel, version, gpus=1, mem=RTX_PRO_6000, targets=("sm_120",), model=None):
    path = F / rel
    out = []
    for cfg in read_config(str(path), path.read_bytes(), read=lambda p: Path(p).read_bytes()):
        cfg.model = model
        m = Machine(targets, gpus, mem)
        out += lint(cfg, release_for(version), m) + check_memory(cfg, release_for(version), m)
    return out


def where(lints):
    return sorted((x.rule, Path(x.path).name, x.line) for x in lints)


def test_seed000_workaround_unit_flags_each_workaround_at_its_line():
    lints = run("seed000/vllm.service.workaround", "0.15.1")
    assert where(lints) == [
        ("awq-marlin", "vllm.service.workaround", 11),
        ("workaround-flags-slow", "vllm.service.workaround", 7),  # VLLM_DISABLED_KERNELS
        ("workaround-flags-slow", "vllm.service.workaround", 13),  # TRITON_ATTN
        ("workaround-flags-slow", "vllm.service.workaround", 14),  # --enforce-eager
    ]
    env = next(x for x in lints if x.line == 7)
    assert env.column == 14 and "MarlinLinearKernel" in env.message


def test_seed000_native_unit_is_clean():
    assert run("seed000/vllm.service.native", "0.15.1") == []


def test_seed001_before_bitsandbytes_and_ignored_attention_env():
    lints = run("seed001/before/docker-compose.yml", "0.15.1", gpus=2, mem=RTX_5090)
    assert where(lints) == [
        ("bitsandbytes-sm120", "docker-compose.yml", 19),
        ("env-not-read", "docker-compose.yml", 12),
    ]
    env = next(x for x in lints if x.rule == "env-not-read")
    assert "removed in 0.15.0" in env.message and "--attention-backend" in env.message


def test_seed001_before_on_0141_warns_deprecation():
    lints = run("seed001/before/docker-compose.yml", "0.14.1", gpus=2, mem=RTX_5090)
    assert ("env-deprecated", "docker-compose.yml", 12) in where(lints)


def test_seed001_after_is_clean():
    assert run("seed001/after/docker-compose.yml", "0.14.1", gpus=2, mem=RTX_5090) == []


def test_seed002_before_triton_name_and_sampler_oom():
    lints = run("seed002/before/serve_glm47_nvfp4_vllm.sh", "0.15.1", gpus=4, model=GLM)
    assert where(lints) == [
        ("bad-attention-backend", "serve_glm47_nvfp4_vllm.sh", 12),
        ("sampler-warmup-oom", "serve_glm47_nvfp4_vllm.sh", 13),
    ]
    bad = lints[0] if lints[0].rule == "bad-attention-backend" else lints[1]
    assert "did you mean TRITON_ATTN" in bad.message
    assert bad.column == len("ATTENTION_BACKEND=${ATTENTION_BACKEND:-") + 1


def test_seed002_after_is_clean():
    assert run("seed002/after/serve_glm47_nvfp4_vllm.sh", "0.15.1", gpus=4, model=GLM) == []


@pytest.mark.parametrize("version", ["0.11.0", "0.15.1", "0.33.0"])
@pytest.mark.parametrize(
    "rel", ["valid/serve.sh", "valid/k8s.yaml", "valid/config.yaml", "seed000/vllm.service.native"]
)
def test_valid_configs_are_clean(rel, version):
    assert run(rel, version, gpus=2) == []


def cfg(*words, env=()):
    from bwdoctor.serve.config import EnvVar

    return ServeConfig(
        "x.sh",
        "shell",
        launcher="vllm serve",
        argv=[Token(w, "x.sh", 1, i + 1) for i, w in enumerate(words)],
        env=[EnvVar(k, v, "x.sh", 2, 1) for k, v in env],
    )


def test_unknown_flag_gets_did_you_mean():
    (x,) = lint(cfg("m", "--max-model-length", "4096"), release_for("0.15.1"))
    assert x.rule == "unknown-flag" and "did you mean --max-model-len" in x.message


def test_removed_flag_names_release():
    (x,) = lint(cfg("m", "--swap-space", "4"), release_for("0.33.0"))
    assert "removed in vLLM 0.18.0" in x.message


def test_flag_too_new_names_release():
    (x,) = lint(cfg("m", "--attention-backend", "TRITON_ATTN"), release_for("0.11.0"))
    assert "added in 0.13.0" in x.message


def test_underscores_equals_and_no_forms_are_accepted():
    assert (
        lint(
            cfg("m", "--max_model_len=4096", "--no-enable-prefix-caching", "--gpu_memory_utilization", "0.8"),
            release_for("0.15.1"),
        )
        == []
    )


def test_removed_env_names_removing_release():
    (x,) = lint(cfg("m", env=[("VLLM_USE_V1", "1")]), release_for("0.15.1"))
    assert "not read by vLLM 0.15.1" in x.message and "removed in 0.11.1" in x.message


def test_unknown_quantization_and_plugin_removal():
    (x,) = lint(cfg("m", "--quantization", "bitsandbytes"), release_for("0.33.0"))
    assert x.rule == "unknown-quantization" and "removed in 0.28.0" in x.message


def test_tp_exceeds_gpus():
    (x,) = lint(cfg("m", "-tp", "4"), release_for("0.15.1"), Machine(("sm_120",), 2, RTX_5090))
    assert x.rule == "tp-exceeds-gpus" and x.column == 3


def test_config_with_equals_is_ignored():
    (x,) = lint(cfg("m", "--config=x.yaml"), release_for("0.15.1"))
    assert x.rule == "config-ignored"


def test_fa3_forced_on_blackwell():
    lints = lint(cfg("m", env=[("VLLM_FLASH_ATTN_VERSION", "3")]), release_for("0.14.1"), Machine(("sm_120",), 1))
    assert [x.rule for x in lints] == ["fa3-blackwell"] and lints[0].severity == "error"


def test_flashinfer_on_sm120_with_0151():
    lints = lint(cfg("m", "--attention-backend", "flashinfer"), release_for("0.15.1"), Machine(("sm_120",), 1))
    assert [x.rule for x in lints] == ["flashinfer-sm120"]
    assert lint(cfg("m", "--attention-backend", "flashinfer"), release_for("0.15.1"), Machine(("sm_90",), 1)) == []


def test_mla_backend_not_on_sm120():
    (x,) = lint(cfg("m", "--attention-backend", "FLASHMLA"), release_for("0.15.1"), Machine(("sm_120",), 1))
    assert x.rule == "bad-attention-backend" and "compute capability" in x.message


def test_yaml_false_dropped_before_028(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("enable-prefix-caching: false\n")
    (c,) = read_config(str(p), p.read_bytes())
    (x,) = lint(c, release_for("0.15.1"))
    assert x.rule == "config-ignored" and (x.line, x.column) == (1, 24)
    assert lint(c, release_for("0.33.0")) == []
