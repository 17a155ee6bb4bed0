#!/usr/bin/env python3
"""Generate bwdoctor/data/vllm_releases.json from vLLM's released wheels on PyPI.

For each release: `pip download vllm==X --no-deps --only-binary :all:` (the x86_64 wheel; the sdists
cannot be downloaded without building them, which needs torch), then a static scan of the Python
sources inside the wheel — nothing is imported or executed:

  flags        string literals "--x" in vllm/engine/arg_utils.py, vllm/entrypoints/**/cli_args.py and
               vllm/entrypoints/cli/serve.py, plus the fields of the *FrontendArgs dataclasses
  negations    "--no-x" for bool fields of EngineArgs / *FrontendArgs (argparse BooleanOptionalAction);
               "--disable-x"/"--enable-x" pairs where the release has EnableDisableAction
  short        "-tp"-style aliases found as literals in the same files
  env          keys of vllm/envs.py `environment_variables`
  attention    members of the attention backend enum (_Backend / AttentionBackendEnum)
  quantization names in QuantizationMethods (Literal[...]) of model_executor/layers/quantization
  torch        the `torch==` pin of the wheel's Requires-Dist

The output stores each name once with the ranges of release indices where it exists, so the file
stays small and "removed in X" is a lookup.  Usage:

  python tools/gen_vllm_facts.py                      # default release list, writes the JSON
  python tools/gen_vllm_facts.py --versions 0.15.1 --print
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bwdoctor" / "data" / "vllm_releases.json"
SCHEMA = "bwdoctor.vllm-releases/1"

DEFAULT_VERSIONS = [
    "0.9.2",
    "0.10.0",
    "0.10.1.1",
    "0.10.2",
    "0.11.0",
    "0.11.1",
    "0.11.2",
    "0.12.0",
    "0.13.0",
    "0.14.0",
    "0.14.1",
    "0.15.0",
    "0.15.1",
    "0.16.0",
    "0.17.0",
    "0.17.1",
    "0.18.0",
    "0.18.1",
    "0.19.0",
    "0.19.1",
    "0.20.0",
    "0.20.1",
    "0.20.2",
    "0.21.0",
    "0.22.0",
    "0.22.1",
    "0.23.0",
    "0.24.0",
    "0.25.0",
    "0.25.1",
    "0.26.0",
    "0.27.0",
    "0.27.1",
    "0.28.0",
    "0.29.0",
    "0.30.0",
    "0.31.0",
    "0.32.0",
    "0.33.0",
]
PLATFORMS = [
    "manylinux1_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_31_x86_64",
    "manylinux_2_35_x86_64",
]

FLAG_RE = re.compile(r"^--[a-z0-9][a-z0-9-]*$")
SHORT_RE = re.compile(r"^-[a-zA-Z]{1,4}$")
ENV_KEY_RE = re.compile(r'^\s*"([A-Z][A-Z0-9_]+)"\s*:', re.M)
ENUM_NAMES = ("AttentionBackendEnum", "_Backend")
ATTENTION_FILES = (
    "vllm/v1/attention/backends/registry.py",
    "vllm/attention/backends/registry.py",
    "vllm/platforms/interface.py",
)
QUANT_FILE = "vllm/model_executor/layers/quantization/__init__.py"


def wanted(name: str) -> bool:
    """True for wheel members the scan reads."""
    return (
        name
        in (
            "vllm/engine/arg_utils.py",
            "vllm/envs.py",
            "vllm/entrypoints/cli/serve.py",
            "vllm/utils/argparse_utils.py",
            QUANT_FILE,
        )
        or name in ATTENTION_FILES
        or (name.startswith("vllm/entrypoints/") and name.endswith("/cli_args.py"))
        or (name.endswith(".dist-info/METADATA") and name.count("/") == 1)
    )


def read_wheel(path: Path) -> dict:
    """{member path: text} of the wheel members the scan needs."""
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n).decode("utf-8", "replace") for n in zf.namelist() if wanted(n)}


def parse(text: str):
    """AST of a source file, or None when this interpreter cannot parse its syntax."""
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


def string_constants(text: str) -> list:
    """Every plain string literal of a module (regex fallback for syntax this Python lacks)."""
    tree = parse(text)
    if tree is None:
        return re.findall(r'"(-{1,2}[A-Za-z0-9][A-Za-z0-9-]*)"', text)
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _is_bool(annotation) -> bool:
    src = ast.unparse(annotation).replace(" ", "")
    return src in ("bool", "Optional[bool]", "bool|None", "None|bool")


def dataclass_fields(text: str, class_pred) -> list:
    """[(field name, is_bool)] of the annotated fields of classes whose name passes class_pred."""
    tree = parse(text)
    out = []
    if tree is None:
        return out
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and class_pred(node.name):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    if "ClassVar" not in ast.unparse(stmt.annotation):
                        out.append((stmt.target.id, _is_bool(stmt.annotation)))
    return out


def scan_flags(files: dict) -> dict:
    """Long flags, boolean negations and short aliases of `vllm serve` in one release."""
    sources = {
        p: t
        for p, t in files.items()
        if p in ("vllm/engine/arg_utils.py", "vllm/entrypoints/cli/serve.py") or p.endswith("/cli_args.py")
    }
    flags, short = set(), set()
    for text in sources.values():
        for s in string_constants(text):
            if FLAG_RE.match(s):
                flags.add(s)
            elif SHORT_RE.match(s):
                short.add(s)
    bools = set()
    for path, text in sources.items():
        if path.endswith("/cli_args.py"):
            for name, is_bool in dataclass_fields(text, lambda c: c.endswith("FrontendArgs")):
                flags.add("--" + name.replace("_", "-"))
                if is_bool:
                    bools.add("--" + name.replace("_", "-"))
    for name, is_bool in dataclass_fields(
        files.get("vllm/engine/arg_utils.py", ""), lambda c: c in ("EngineArgs", "AsyncEngineArgs")
    ):
        if is_bool:
            bools.add("--" + name.replace("_", "-"))
    bools &= flags
    negations = {"--no-" + f[2:] for f in bools}
    if any("EnableDisableAction" in t for t in files.values()):
        for f in bools:
            if f.startswith("--enable-"):
                negations.add("--disable-" + f[len("--enable-") :])
            elif f.startswith("--disable-"):
                negations.add("--enable-" + f[len("--disable-") :])
    negations -= flags
    return {"flags": sorted(flags), "negations": sorted(negations), "short": sorted(short - {"-h"})}


def scan_env(text: str) -> list:
    """Keys of envs.py's environment_variables mapping."""
    tree = parse(text)
    if tree is not None:
        for node in ast.walk(tree):
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            if (
                isinstance(node, (ast.Assign, ast.AnnAssign))
                and isinstance(target, ast.Name)
                and target.id == "environment_variables"
                and isinstance(node.value, ast.Dict)
            ):
                return sorted(k.value for k in node.value.keys if isinstance(k, ast.Constant))
    start = text.find("environment_variables")
    return sorted(set(ENV_KEY_RE.findall(text[start:] if start >= 0 else text)))


def scan_attention(files: dict) -> dict:
    """Members of the attention backend enum and the file it was found in."""
    for path in ATTENTION_FILES:
        tree = parse(files.get(path, ""))
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in ENUM_NAMES:
                members = [
                    t.id
                    for s in node.body
                    if isinstance(s, ast.Assign)
                    for t in s.targets
                    if isinstance(t, ast.Name) and t.id.isupper()
                ]
                if members:
                    return {"enum": node.name, "file": path, "members": members}
    return {"enum": None, "file": None, "members": []}


def scan_quantization(text: str) -> dict:
    """Quantization method names (QuantizationMethods Literal) and the deprecated ones."""
    tree = parse(text)
    names, deprecated = [], []
    if tree is None:
        return {"methods": names, "deprecated": deprecated}
    for node in ast.walk(tree):
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if not isinstance(target, ast.Name) or not isinstance(node, (ast.Assign, ast.AnnAssign)):
            continue
        strings = [n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        if target.id == "QuantizationMethods":
            names = strings
        elif target.id == "DEPRECATED_QUANTIZATION_METHODS":
            deprecated = strings
    return {"methods": sorted(set(names)), "deprecated": sorted(set(deprecated))}


def scan_torch_pin(files: dict):
    """The torch==X pin from the wheel METADATA (None if unpinned)."""
    for path, text in files.items():
        if path.endswith("METADATA"):
            m = re.search(r"^Requires-Dist: torch\s*\(?==\s*([0-9][^\s;,)]*)", text, re.M)
            return m.group(1) if m else None
    return None


def scan_release(files: dict) -> dict:
    """Every fact of one release from its source files."""
    quant = scan_quantization(files.get(QUANT_FILE, ""))
    att = scan_attention(files)
    return {
        **scan_flags(files),
        "env": scan_env(files.get("vllm/envs.py", "")),
        "attention": att["members"],
        "attention_enum": att["file"],
        "quantization": quant["methods"],
        "quantization_deprecated": quant["deprecated"],
        "torch": scan_torch_pin(files),
    }


def download_wheel(version: str, dest: Path, timeout: float = 900) -> Path:
    """The x86_64 wheel of vllm==version from PyPI (pip download, no dependencies)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"vllm=={version}",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        "-d",
        str(dest),
        "-q",
    ]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    subprocess.run(cmd, check=True, timeout=timeout, stdin=subprocess.DEVNULL)
    wheels = sorted(dest.glob(f"vllm-{version}-*.whl"))
    if not wheels:
        raise RuntimeError(f"no wheel for vllm {version} in {dest}")
    return wheels[0]


KINDS = ("flags", "negations", "short", "env", "attention", "quantization", "quantization_deprecated")


def to_ranges(indices: list) -> list:
    """[0,1,2,5] -> [[0,2],[5,5]]."""
    out = []
    for i in indices:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def pack(releases: dict) -> dict:
    """Compact JSON form: release list + for each kind, name -> index ranges where it exists."""
    versions = list(releases)
    doc = {
        "schema": SCHEMA,
        "source": "static scan of vLLM wheels from https://pypi.org/project/vllm/ by tools/gen_vllm_facts.py",
        "releases": [
            {"version": v, "torch": releases[v]["torch"], "attention_enum": releases[v]["attention_enum"]}
            for v in versions
        ],
    }
    for kind in KINDS:
        table = {}
        for i, v in enumerate(versions):
            for name in releases[v][kind]:
                table.setdefault(name, []).append(i)
        doc[kind] = {name: to_ranges(idx) for name, idx in sorted(table.items())}
    return doc


def version_key(v: str):
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.]", v))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", nargs="*", default=DEFAULT_VERSIONS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--wheel-dir", type=Path, help="keep downloaded wheels here (default: temporary, deleted)")
    ap.add_argument("--print", action="store_true", help="print the per-release facts instead of writing")
    args = ap.parse_args(argv)
    releases = {}
    tmp = Path(tempfile.mkdtemp(prefix="vllm-wheels-", dir="/tmp"))
    try:
        for v in sorted(args.versions, key=version_key):
            dest = args.wheel_dir or tmp
            dest.mkdir(parents=True, exist_ok=True)
            try:
                wheel = download_wheel(v, dest)
            except (subprocess.SubprocessError, RuntimeError) as exc:
                print(f"skip {v}: {exc}", file=sys.stderr)
                continue
            releases[v] = scan_release(read_wheel(wheel))
            r = releases[v]
            print(
                f"{v}: {len(r['flags'])} flags, {len(r['negations'])} negations, {len(r['env'])} env, "
                f"{len(r['attention'])} attention, {len(r['quantization'])} quantization, torch {r['torch']}",
                file=sys.stderr,
            )
            if args.wheel_dir is None:
                wheel.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.print:
        json.dump(releases, sys.stdout, indent=1)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(pack(releases), separators=(",", ":"), sort_keys=False) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(releases)} releases)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
