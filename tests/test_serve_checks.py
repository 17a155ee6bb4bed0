"""Serve rules as checks: one lint pass per run, each rule's records under its check, each with its own article."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from bwdoctor import cli as bwdoctor_cli
from bwdoctor import knowledge, registry
from bwdoctor.checks import serve as serve_checks
from bwdoctor.engine import evaluate
from bwdoctor.serve import lint as lint_mod
from bwdoctor.serve.lint import ARTICLE, ENV_ARTICLE, Machine, lint
from bwdoctor.serve.memory import check_memory
from bwdoctor.serve.readers import read_config
from bwdoctor.serve.releases import release_for

F = Path(__file__).parent / "fixtures" / "serve"
SEED001 = F / "seed001/before/docker-compose.yml"
RTX_5090 = 32607 * 2**20
TWO_5090 = [{"index": i, "arch": "sm_120", "cc": [12, 0], "mem_total": RTX_5090} for i in range(2)]


def serve_specs() -> list:
    reg = registry.load(no_plugins=True)
    return [c for c in reg.checks.values() if c.family == "serve-config"]


def configs_fact(*paths: Path, version: str = "0.15.1") -> dict:
    cfgs = [c.to_json() for p in paths for c in read_config(str(p), p.read_bytes())]
    return {"configs": cfgs, "vllm_version": version}


def test_seed001_compose_attention_env_points_to_its_article(cli, report_schema):
    proc = cli(
        "check", "--config", str(SEED001), "--vllm-version", "0.15.1", "--format", "json", "--select", "serve-config"
    )
    doc = json.loads(proc.stdout)
    import jsonschema

    jsonschema.validate(doc, report_schema)
    (env,) = [f for f in doc["findings"] if f["status"] == "fail" and "VLLM_ATTENTION_BACKEND" in f["message"]]
    assert (env["id"], env["kb"]) == ("BW602", "bad-attention-backend")
    assert (env["location"]["line"], env["location"]["column"]) == (12, 9)
    # the check keeps its own article for itself; only the finding of this rule points elsewhere
    assert {f["kb"] for f in doc["findings"] if f["id"] == "BW602"} == {"bad-attention-backend"}
    assert {f["kb"] for f in doc["findings"] if f["id"] == "BW601"} == {"unknown-serve-option"}


class Counter:
    def __init__(self, monkeypatch):
        self.passes = 0
        self.lints = 0
        from bwdoctor.serve import lint as lint_module  # checks.serve imports it when a config is found

        real_pass, real_lint = serve_checks.lint_pass, lint_module.lint

        def counted_pass(*facts):
            self.passes += 1
            return real_pass(*facts)

        def counted_lint(cfg, release, machine):
            self.lints += 1
            return real_lint(cfg, release, machine)

        monkeypatch.setattr(serve_checks, "lint_pass", counted_pass)
        monkeypatch.setattr(lint_module, "lint", counted_lint)


def test_cli_run_lints_the_configs_once(monkeypatch, capsys):
    count = Counter(monkeypatch)
    rc = bwdoctor_cli.main(
        [
            "check",
            "--config",
            str(SEED001),
            "--vllm-version",
            "0.15.1",
            "--format",
            "json",
            "--select",
            "serve-config",
            "--target",
            "sm_120",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    failed = sorted((f["id"], f["kb"], f["location"]["line"]) for f in doc["findings"] if f["status"] == "fail")
    assert failed == [("BW602", "bad-attention-backend", 12), ("BW607", "bitsandbytes-sm120", 19)]
    assert rc == 1
    assert (count.passes, count.lints) == (1, 1)  # 10 rule checks ran; one config, linted once


def test_every_rule_check_reads_one_pass_over_all_configs(monkeypatch):
    count = Counter(monkeypatch)
    paths = [SEED001, F / "seed000/vllm.service.workaround", F / "seed002/before/serve_glm47_nvfp4_vllm.sh"]
    facts = {
        "serve_configs": configs_fact(*paths),
        "distributions": [],
        "targets": ["sm_120"],
        "gpus": TWO_5090,
        "cuda_binaries": {},
    }
    findings = evaluate(serve_specs(), facts)
    assert len({f.id for f in findings}) == 13 and not [f for f in findings if f.status in ("skip", "error")]
    assert (count.passes, count.lints) == (1, 3)
    failed = sorted((f.id, Path(f.location.path).name, f.location.line) for f in findings if f.status == "fail")
    assert failed == [
        ("BW602", "docker-compose.yml", 12),
        ("BW603", "serve_glm47_nvfp4_vllm.sh", 12),
        ("BW604", "vllm.service.workaround", 7),
        ("BW604", "vllm.service.workaround", 11),
        ("BW604", "vllm.service.workaround", 13),
        ("BW604", "vllm.service.workaround", 14),
        ("BW607", "docker-compose.yml", 19),
        ("BW610", "serve_glm47_nvfp4_vllm.sh", 9),
    ]
    # the same facts again (a second output of the same run) are not linted again; new facts are
    evaluate(serve_specs(), facts)
    assert count.passes == 1
    evaluate(serve_specs(), {**facts, "serve_configs": configs_fact(*paths)})
    assert count.passes == 2


def test_memory_planner_crash_stops_only_the_memory_checks(monkeypatch):
    def boom(cfg, release, machine):
        raise ZeroDivisionError("planner")

    monkeypatch.setattr(serve_checks, "check_memory", boom)
    facts = {"serve_configs": configs_fact(SEED001), "distributions": [], "targets": ["sm_120"], "gpus": TWO_5090}
    status = {f.id: f.status for f in evaluate(serve_specs(), facts)}
    assert status["BW605"] == status["BW606"] == "error"
    assert status["BW607"] == "fail" and status["BW601"] == "pass"


def test_workaround_flags_on_an_old_vllm_built_with_sm120_code():
    # vLLM 0.9.0's PyPI wheel has no sm_120 code, so without cuda_binaries the workarounds are what runs it;
    # a build whose _C carries sm_120 cubins runs natively, and the workarounds only slow it down
    (c,) = read_config("u.service", (F / "seed000/vllm.service.workaround").read_bytes())
    facts = {
        "serve_configs": {"configs": [c.to_json()], "vllm_version": "0.9.0"},
        "distributions": [],
        "targets": ["sm_120"],
        "gpus": TWO_5090,
    }
    spec = next(s for s in serve_specs() if s.id == "BW604")
    unknown = evaluate([spec], {**facts, "cuda_binaries": {}})
    assert [(f.status, f.location.line) for f in unknown] == [("fail", 11)]
    native = {
        "vllm": {
            "version": "0.9.0",
            "files": [{"path": "/site/vllm/_C.abi3.so", "fatbin": {"elf": ["sm_90", "sm_120"], "ptx": []}}],
        }
    }
    found = evaluate([spec], {**facts, "cuda_binaries": native})
    assert sorted(f.location.line for f in found if f.status == "fail") == [7, 11, 13, 14]


def _articles() -> set:
    return set(knowledge.load_all())


def test_every_rule_article_exists():
    emitted = set(ARTICLE.values()) | set(ENV_ARTICLE.values())
    missing = sorted(emitted - _articles())
    assert not missing, f"rules point to articles that do not exist: {missing}"


def test_every_rule_is_reported_by_exactly_one_check_with_a_related_article():
    owners: dict = {}
    for rc in serve_checks.RULE_CHECKS:
        assert rc.kb in {ARTICLE[r] for r in rc.rules}, f"{rc.id}'s article is none of its rules'"
        for rule in rc.rules:
            owners.setdefault(rule, []).append(rc.id)
    assert {r: len(ids) for r, ids in owners.items()} == dict.fromkeys(ARTICLE, 1)


@pytest.mark.parametrize("module", ["lint.py", "memory.py"])
def test_rules_take_their_article_from_the_table(module):
    """No Lint is built with a slug written in place: every slug comes from ARTICLE / ENV_ARTICLE."""
    path = Path(lint_mod.__file__).with_name(module)
    tree = ast.parse(path.read_text())
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("Lint", "_lint")
    ]
    assert calls
    for call in calls:
        slug = (
            call.args[1] if call.func.id == "Lint" else next((k.value for k in call.keywords if k.arg == "slug"), None)
        )
        assert not isinstance(slug, ast.Constant), f"{path.name}:{call.lineno} writes a slug in place"


@pytest.mark.parametrize("version", ["0.9.0", "0.14.1", "0.15.1", "0.33.0"])
def test_every_slug_emitted_over_the_fixtures_is_an_article(version):
    from bwdoctor.capacity.model import facts_from_config
    from bwdoctor.serve.memory import model_to_json

    glm = model_to_json(facts_from_config(json.loads((F / "models/glm-4.7-nvfp4/config.json").read_text()), "glm"))
    paths = [p for p in sorted(F.rglob("*")) if p.is_file() and p.suffix != ".json" and p.name != "README.md"]
    arts = _articles()
    seen = set()
    for mem in (RTX_5090, 97887 * 2**20):
        machine = Machine(("sm_120",), 1, mem)
        for p in paths:
            for c in read_config(str(p), p.read_bytes(), read=lambda q: Path(q).read_bytes()):
                c.model = glm
                for x in lint(c, release_for(version), machine) + check_memory(c, release_for(version), machine):
                    assert x.slug in arts, f"{x.rule} at {p.name}:{x.line} points to missing article {x.slug}"
                    seen.add(x.rule)
    assert seen  # the fixtures do break rules at every version
