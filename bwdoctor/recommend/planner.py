"""The planner: ranked install plans for GPU targets, a driver, a platform, a CPU and a Python, from the table.

Rules used here come from the domain modules and the checks, never copied:
  the driver's CUDA ceiling and each target's first toolkit   bwdoctor.domain.cuda (NVIDIA's release notes)
  which code a target runs (native / ptx-jit / none)          bwdoctor.domain.compat.verdict_for_file
  the CPU's x86-64 level                                      bwdoctor.domain.isa
  which vLLM libraries decide (core ops, FlashAttention 2)    bwdoctor.checks.gpucode
  an arch list covers a target                                bwdoctor.archlist.covers
  memory per parallel compile (MAX_JOBS)                      bwdoctor.checks.build.GIB_PER_COMPILE
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ..archlist import covers, parse_torch_arch_list
from ..domain.arch import CC, family_of, is_blackwell, parse_cc
from ..domain.compat import NATIVE, NONE, PTX_JIT, verdict_for_file
from ..domain.cuda import TOOLKIT_DRIVER, Release, cuda_release, min_driver_for, release_supports
from ..domain.isa import ORDER, flags_needed
from ..domain.versions import driver_version_tuple, version_key
from ..records import dataclass, field
from .table import ReleaseTable, Row

SCHEMA = "bwdoctor.recommend/1"
PYTORCH_INDEX = "https://download.pytorch.org/whl/{tag}"
EXTRAS = ("flash-attn", "xformers", "flashinfer", "bitsandbytes")
RANK = {NONE: 0, PTX_JIT: 1, NATIVE: 2}
# A flag that alone stands for a level when a person lists a few flags (--cpu-flags avx2) instead of all.
# vLLM's documented GPU requirement: compute capability 7.0 or higher.
VLLM_MIN_CC = (7, 0)
LEVEL_MARK = {"x86-64-v2": "sse4_2", "x86-64-v3": "avx2", "x86-64-v4": "avx512f"}


@dataclass(frozen=True)
class Inputs:
    """What a plan is for. None means unknown (the plan then says what it assumed)."""

    targets: Tuple[str, ...]
    driver: Optional[str] = None
    kernel_module: Optional[str] = None  # "open" / "proprietary" / None
    platform: str = "linux_x86_64"
    python: str = "3.12"
    cpu_flags: Optional[frozenset] = None
    cpu_flags_complete: bool = False  # all of /proc/cpuinfo (strict level), or a few listed by a person
    vllm: Optional[str] = None  # a version, or None / "latest"
    extras: Tuple[str, ...] = ()
    ram_gib: Optional[float] = None
    cores: Optional[int] = None
    origin: Dict[str, str] = field(default_factory=dict)  # input → "option" / "machine" / "default"


# ----------------------------------------------------------------------------------------------- inputs


def driver_ceiling(driver: Optional[str]) -> Optional[Release]:
    """The newest CUDA release this driver fully supports (NVIDIA's table in domain.cuda); None when unknown."""
    d = driver_version_tuple(driver) if driver else None
    if not d:
        return None
    ok = [rel for rel, need in TOOLKIT_DRIVER.items() if d >= (driver_version_tuple(need) or (999,))]
    return max(ok) if ok else None


def driver_needed(cuda: object) -> Optional[str]:
    """The driver a CUDA build needs for full support (NVIDIA's table; a newer minor: its major's newest row)."""
    return min_driver_for(cuda)[0]


def driver_at_least(driver: Optional[str], need: str) -> bool:
    """True when the driver is `need` or newer, or unknown (the plan then says it assumed so)."""
    have, want = driver_version_tuple(driver) if driver else None, driver_version_tuple(need)
    return have is None or want is None or have >= want


def cuda_covers_targets(cuda: object, targets: Tuple[str, ...]) -> bool:
    """True when the CUDA release knows every target (its runtime libraries carry that architecture's kernels)."""
    rel = cuda_release(cuda)
    return rel is not None and all((first_release(t) or (0, 0)) <= rel for t in targets)


def first_release(target: str) -> Optional[Release]:
    """The first CUDA release that can build native code for target (domain.cuda's table)."""
    for rel in sorted(TOOLKIT_DRIVER):
        if release_supports(f"{rel[0]}.{rel[1]}", target):
            return rel
    return None


def cpu_level(inp: Inputs) -> Optional[str]:
    """The CPU's x86-64 level: strict from a full flag list, by the marking flag from a short list."""
    if inp.cpu_flags is None or not inp.platform.endswith("x86_64"):
        return None
    flags = {f.lower() for f in inp.cpu_flags}
    named = [lvl for lvl in ORDER if lvl in flags]
    if named:
        return named[-1]
    if not inp.cpu_flags_complete:  # a few flags named by a person: the highest level whose marking flag is there
        marked = [lvl for lvl in ORDER if LEVEL_MARK[lvl] in flags]
        return marked[-1] if marked else "x86-64"
    level = "x86-64"
    for lvl in ORDER:
        if not flags_needed(lvl) <= flags:
            break
        level = lvl
    return level


def _level_index(level: Optional[str]) -> int:
    return ORDER.index(level) + 1 if level in ORDER else 0


def _rel_text(rel: Optional[Release]) -> Optional[str]:
    return f"{rel[0]}.{rel[1]}" if rel else None


# ---------------------------------------------------------------------------------------------- verdicts


def _vllm_role(path: str) -> Optional[str]:
    """'core' for vLLM's _C / _moe_C, 'fa2' for its FlashAttention 2, None for the GPU-specific rest
    (the same split as the gpu-code check BW302)."""
    from bwdoctor.checks.gpucode import _VLLM_CORE, _VLLM_FA2

    base = os.path.basename(path)
    return "core" if _VLLM_CORE.search(base) else "fa2" if _VLLM_FA2.search(base) else None


def deciding_files(row: Row, cuda: Optional[str] = None) -> List[Dict[str, Any]]:
    """The files of a row that decide whether the package runs: vLLM's core ops (and FA2, which must not be
    'none'); the bitsandbytes library of the CUDA in use; every file with GPU code otherwise."""
    files = [f for f in row.get("files") or [] if not f.get("error")]
    if row["package"] == "vllm":
        return [f for f in files if _vllm_role(f["path"])] or files
    if row["package"] == "bitsandbytes" and cuda:
        tag = cuda.replace(".", "")
        chosen = [f for f in files if re.search(rf"libbitsandbytes_cuda{tag}[._]", f["path"])]
        return chosen or files
    return files


def _worst(cc: CC, files: List[Dict[str, Any]]) -> Optional[Tuple[str, Optional[str], Dict[str, Any]]]:
    worst: Optional[Tuple[str, Optional[str], Dict[str, Any]]] = None
    for f in files:
        v = verdict_for_file(cc, f)
        if worst is None or RANK[v.status] < RANK[worst[0]]:
            worst = (v.status, v.entry, f)
    return worst


def code_for(row: Row, targets: Tuple[str, ...], cuda: Optional[str] = None) -> Tuple[Dict[str, str], List[dict]]:
    """Per target the worst verdict over the deciding files, with the evidence (file, entry, its cubins/PTX).

    For vLLM the core ops decide, and FlashAttention 2 only when it has no code at all: its published build is
    sm_80 + PTX, so PTX-only there is the normal case (check BW302 reports it as info)."""
    files = deciding_files(row, cuda)
    code: Dict[str, str] = {}
    evidence: List[dict] = []
    for t in targets:
        cc = parse_cc(t)
        groups = [("", files)]
        if row["package"] == "vllm":
            core = [f for f in files if _vllm_role(f["path"]) == "core"]
            fa2 = [f for f in files if _vllm_role(f["path"]) == "fa2"]
            # FlashAttention 2 needs CC >= 8.0: on older GPUs vLLM picks another backend (as BW302 says)
            groups = [("core", core or files)] + ([("fa2", fa2)] if fa2 and cc >= (8, 0) else [])
        status: Optional[str] = None
        for role, group in groups:
            worst = _worst(cc, group)
            if worst is None:
                continue
            st, entry, f = worst
            if role != "fa2" or st == NONE:
                status = st if status is None or RANK[st] < RANK[status] else status
            ev = {"target": t, "file": f["path"], "entry": entry, "cubins": _names(f, "elf"), "ptx": _names(f, "ptx")}
            ev.update({"files_checked": len(group), "status": st})
            if role:
                ev["role"] = role
            evidence.append(ev)
        if status is None:
            evidence.append({"target": t, "file": None, "entry": None, "cubins": [], "ptx": [], "status": NONE})
        code[t] = status or NONE
    return code, evidence


def _names(item: Dict[str, Any], kind: str) -> List[str]:
    out: List[str] = []
    for sec in ("fatbin", "relfatbin"):
        out += [n for n in (item.get(sec) or {}).get(kind, []) if n not in out]
    return out


# --------------------------------------------------------------------------------------------- packages


def _package(row: Row, targets: Tuple[str, ...], cuda: Optional[str] = None) -> Dict[str, Any]:
    code, evidence = code_for(row, targets, cuda or row.get("cuda"))
    return {
        "name": row["package"],
        "version": row["version"],
        "cuda": row.get("cuda"),
        "index_url": row.get("index_url"),
        "code_for_target": code,
        "evidence": evidence,
        "truth": row.get("kind", "scanned"),
        "source": row.get("source"),
        "wheel": (row.get("wheel") or {}).get("filename"),
        "sha256": (row.get("wheel") or {}).get("sha256"),
    }


def _problems(row: Row, pkg: Dict[str, Any], inp: Inputs, ceiling: Optional[Release]) -> List[Dict[str, str]]:
    """Why a row cannot be used here: no GPU code, CUDA above the driver's ceiling, an ISA the CPU lacks."""
    out = []
    name, ver = row["package"], row["version"]
    if not (row.get("files") or []):
        out.append({"what": "no-gpu-code", "reason": f"{name} {ver} for {row.get('platform')} has no GPU code"})
        return out
    bad = [t for t, s in pkg["code_for_target"].items() if s == NONE]
    if bad:
        ev = {e["target"]: e for e in pkg["evidence"] if e.get("status") == NONE}
        t = bad[0]
        where = ev[t]["file"] or "its libraries"
        has = ", ".join(ev[t]["cubins"] + ev[t]["ptx"]) or "nothing"
        out.append(
            {"what": "no-code", "reason": f"{name} {ver} has no code for {', '.join(bad)} ({where} holds {has})"}
        )
    need = driver_needed(row.get("cuda"))
    if need and not driver_at_least(inp.driver, need):
        rel = cuda_release(row.get("cuda"))
        out.append(
            {
                "what": "driver",
                "reason": f"{name} {ver} is built for CUDA {_rel_text(rel)}, which needs driver >= {need}; "
                f"driver {inp.driver} supports CUDA <= {_rel_text(ceiling)}",
                "need": need or "",
            }
        )
    level = (row.get("isa") or {}).get("level")
    have = cpu_level(inp)
    if level and have is not None and _level_index(level) > _level_index(have):
        out.append(
            {
                "what": "isa",
                "reason": f"{name} {ver}: {(row.get('isa') or {}).get('file')} needs {level}; this CPU is {have}",
            }
        )
    return out


def _python_ok(row: Row, python: str, table: Optional[ReleaseTable] = None) -> bool:
    """Whether the release has a wheel for this Python: its own tags, else (a declared row) the tags PyPI's
    wheels of the same release carry."""
    tags = row.get("python_tags")
    if not tags and table is not None:
        public = row["version"].split("+", 1)[0]
        tags = next((r.get("python_tags") for r in table.find(row["package"], public) if r.get("python_tags")), None)
    spec = row.get("requires_python")
    if isinstance(spec, str) and spec:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            if not SpecifierSet(spec).contains(f"{python}.0"):
                return False
        except InvalidSpecifier:
            pass
    if not tags:
        return True
    want = "cp" + python.replace(".", "")
    return any(t == want or t.endswith("abi3") or t.startswith("py3") for t in tags)


def _torch_rows(table: ReleaseTable, version: str, platform: str) -> List[Row]:
    return table.find("torch", version, platform)


def _torch_candidates(table: ReleaseTable, inp: Inputs, ceiling: Optional[Release]) -> List[Tuple[Row, dict]]:
    """Every torch row for the platform that runs on every target within the driver ceiling and the CPU."""
    out = []
    for row in table.find("torch", None, inp.platform):
        pkg = _package(row, inp.targets)
        if not _problems(row, pkg, inp, ceiling) and _python_ok(row, inp.python, table):
            out.append((row, pkg))
    return out


# -------------------------------------------------------------------------------------------------- plans


def plan(inp: Inputs, table: ReleaseTable) -> Dict[str, Any]:
    """The bwdoctor.recommend/1 document for these inputs."""
    ceiling = driver_ceiling(inp.driver)
    blocked: List[Dict[str, Any]] = []
    notes: List[str] = []
    blocked += _driver_blocks(inp, ceiling)
    level = cpu_level(inp)
    doc: Dict[str, Any] = {
        "schema": SCHEMA,
        "inputs": {
            "targets": list(inp.targets),
            "families": [family_of(list(parse_cc(t))) for t in inp.targets],
            "driver": inp.driver,
            "driver_cuda_ceiling": _rel_text(ceiling),
            "kernel_module": inp.kernel_module,
            "platform": inp.platform,
            "python": inp.python,
            "cpu_isa": level,
            "vllm": inp.vllm or "latest",
            "with": list(inp.extras),
            "ram_gib": inp.ram_gib,
            "cores": inp.cores,
            "origin": dict(inp.origin),
        },
        "table": table.counts(),
        "plans": [],
        "blocked": blocked,
        "notes": notes,
    }
    if not inp.targets:
        blocked.append(
            {
                "reason": "no target GPU: none found on this machine and no --target given",
                "fix": "run on the GPU machine, or pass --target sm_XY (e.g. --target sm_120)",
            }
        )
        return doc
    old = [t for t in inp.targets if parse_cc(t) < VLLM_MIN_CC]
    if old:
        blocked.append(
            {
                "reason": f"vLLM needs a GPU of compute capability {VLLM_MIN_CC[0]}.{VLLM_MIN_CC[1]} or newer; "
                f"{', '.join(old)} is older",
                "fix": "serve on a newer GPU (Volta or later), or use an engine that still supports it (llama.cpp)",
                "what": "gpu-too-old",
            }
        )
        return doc
    if any(b.get("what") == "driver-target" for b in blocked):
        return doc  # no CUDA build can run on this driver for these GPUs: nothing to install yet
    if inp.driver is None:
        notes.append("driver unknown (no NVIDIA driver here and no --driver): plans assume any CUDA build runs")
    if inp.vllm and inp.vllm != "latest" and inp.vllm not in table.vllm_versions():
        blocked.append(
            {
                "reason": f"vLLM {inp.vllm} is not in the release table",
                "fix": "pass a released version (bwdoctor knows: "
                + ", ".join(table.vllm_versions()[:6])
                + ", ...), or refresh the table with tools/refresh_releases.py",
            }
        )
        return doc
    wanted = [inp.vllm] if inp.vllm and inp.vllm != "latest" else table.vllm_versions()
    plans: List[Dict[str, Any]] = []
    first_failure: Optional[Tuple[str, List[Dict[str, str]]]] = None
    for v in wanted:
        option, why = _wheels_option(v, inp, table, ceiling)
        if option is not None:
            plans.append(option)
            break
        if first_failure is None:
            first_failure = (v, why)
    newest = wanted[0]
    if first_failure is not None and first_failure[0] == newest:
        v, why = first_failure
        drivers = [w for w in why if w["what"] == "driver"]
        if drivers:
            need = max((w["need"] for w in drivers), key=lambda n: driver_version_tuple(n) or (0,))
            blocked.append(
                {
                    "reason": f"the vLLM {v} wheels: " + "; ".join(w["reason"] for w in drivers),
                    "fix": f"install NVIDIA driver >= {need} (open kernel module) to use vLLM {v}'s wheels",
                    "what": "driver-cuda",
                }
            )
        for w in why:
            if w["what"] == "python":
                blocked.append(
                    {
                        "reason": f"the vLLM {v} wheels: {w['reason']}; this is Python {inp.python}",
                        "fix": f"create the environment with a Python vLLM {v} supports (uv venv --python 3.12)",
                        "what": "python",
                    }
                )
            if w["what"] == "isa":
                blocked.append(
                    {
                        "reason": f"the vLLM {v} wheels: {w['reason']}",
                        "fix": "run on a CPU with that level, or build torch and vLLM from source for this CPU",
                        "what": "isa",
                    }
                )
        source = _source_build(v, inp, table, ceiling, why)
        if source is not None:
            plans.append(source)  # after a wheels set of an older release: building is the longer way
        elif not plans:
            blocked.append(
                {
                    "reason": f"no torch build in the table runs on {', '.join(inp.targets)} within driver "
                    f"{inp.driver}'s CUDA {_rel_text(ceiling)} on {inp.platform}",
                    "fix": "upgrade the NVIDIA driver, or build torch from source",
                    "what": "no-torch",
                }
            )
    for i, p in enumerate(plans, 1):
        p["rank"] = i
    doc["plans"] = plans
    return doc


def _driver_blocks(inp: Inputs, ceiling: Optional[Release]) -> List[Dict[str, Any]]:
    """Blocks that no install can fix: the driver is older than every target's first CUDA, the closed module."""
    out: List[Dict[str, Any]] = []
    for t in inp.targets:
        cc = parse_cc(t)
        first = first_release(t)
        if first is None:
            continue
        need = TOOLKIT_DRIVER[first]
        if ceiling is not None and ceiling < first:
            gen = "Blackwell GPUs need driver R570 or newer" if is_blackwell(list(cc)) else f"{t} needs a newer driver"
            out.append(
                {
                    "reason": f"{t} needs CUDA >= {_rel_text(first)}, which needs driver >= {need}; driver "
                    f"{inp.driver} supports CUDA <= {_rel_text(ceiling)} ({gen})",
                    "fix": f"install NVIDIA driver >= {need} with the open kernel module (e.g. the "
                    f"nvidia-driver-{need.split('.')[0]}-open package), then run bwdoctor recommend again",
                    "what": "driver-target",
                    "target": t,
                }
            )
        if is_blackwell(list(cc)) and inp.kernel_module == "proprietary":
            out.append(
                {
                    "reason": f"{t} (Blackwell) runs only with NVIDIA's open kernel module; this driver is the "
                    "proprietary one",
                    "fix": "install the -open flavour of the same driver (e.g. nvidia-driver-570-open, or "
                    "'sh NVIDIA-Linux-*.run -m=kernel-open') and reboot",
                    "what": "driver-target",
                    "target": t,
                }
            )
    return out


def _torch_for_pin(table: ReleaseTable, version: str, platform: str) -> List[Row]:
    """The torch wheels that can serve a vLLM pin: PyPI's first; then the PyTorch index's variants of the same
    CUDA major as PyPI's build of that version (vLLM's wheels link that major's runtime), newest CUDA first."""
    rows = table.find("torch", version, platform)
    pypi = [r for r in rows if r.get("index_url") is None]
    default_cuda = next(
        (r.get("cuda") for r in table.find("torch", version) if r.get("index_url") is None and r.get("cuda")), None
    )
    major = (cuda_release(default_cuda) or (0, 0))[0]
    index = [r for r in rows if r.get("index_url") and (cuda_release(r.get("cuda")) or (0, 0))[0] == major]
    index.sort(key=lambda r: cuda_release(r.get("cuda")) or (0, 0), reverse=True)
    return pypi + index


def _wheels_option(
    v: str, inp: Inputs, table: ReleaseTable, ceiling: Optional[Release]
) -> Tuple[Optional[Dict[str, Any]], List[Dict[str, str]]]:
    """A wheels plan for vLLM v with its pinned torch from PyPI, or None and why not."""
    why: List[Dict[str, str]] = []
    vrows = table.find("vllm", v, inp.platform)
    torch_v = table.torch_pin(v, inp.platform)
    if not vrows:
        why.append({"what": "missing", "reason": f"no scanned vLLM {v} wheel for {inp.platform} in the table"})
        return None, why
    if torch_v is None:
        why.append({"what": "missing", "reason": f"vLLM {v}'s torch pin is unknown"})
        return None, why
    if not _python_ok(vrows[0], inp.python):
        why.append({"what": "python", "reason": f"vLLM {v} requires Python {vrows[0].get('requires_python')}"})
        return None, why
    candidates = _torch_for_pin(table, torch_v, inp.platform)
    if not candidates:
        why.append({"what": "missing", "reason": f"no torch {torch_v} wheel for {inp.platform} in the table"})
        return None, why
    chosen = None
    for trow in candidates:
        tpkg = _package(trow, inp.targets)
        vrow = dict(vrows[0], cuda=vrows[0].get("cuda") or trow.get("cuda"))
        vpkg = _package(vrow, inp.targets)
        # vLLM's CUDA is its torch's: its driver need is torch's, said once
        bad = _problems(trow, tpkg, inp, ceiling) + [
            p for p in _problems(vrow, vpkg, inp, ceiling) if p["what"] != "driver"
        ]
        if not _python_ok(trow, inp.python, table):
            bad.append({"what": "python", "reason": f"torch {torch_v} has no wheel for Python {inp.python}"})
        if not bad:
            chosen = (trow, tpkg, vpkg)
            break
        if trow is candidates[0]:
            why += bad
    if chosen is None:
        return None, why
    trow, tpkg, vpkg = chosen
    packages = [vpkg, tpkg]
    index = trow.get("index_url")
    where = f"the PyTorch index's {trow['version']}" if index else f"PyPI's torch {torch_v}"
    notes: List[str] = [
        f"vLLM {v} pins torch=={torch_v}; {where} is the CUDA {trow.get('cuda')} build "
        f"(driver >= {min_driver_for(trow.get('cuda'))[0]})"
    ]
    if index:
        notes.append(f"PyPI's torch {torch_v} for {inp.platform} cannot be used ({why[0]['reason']})" if why else "")
        notes = [n for n in notes if n]
    if not cuda_covers_targets(trow.get("cuda"), inp.targets):
        late = [t for t in inp.targets if (first_release(t) or (0, 0)) > (cuda_release(trow.get("cuda")) or (0, 0))]
        notes.append(
            f"CUDA {trow.get('cuda')} predates {', '.join(late)} (first in CUDA "
            f"{_rel_text(first_release(late[0]))}): it runs through the family's older cubins, without that GPU's "
            "own kernels in the CUDA libraries; a CUDA build that knows it is safer when the driver allows"
        )
    extra_pkgs, extra_notes, extra_cmds = _extras(inp, table, trow, ceiling)
    packages += extra_pkgs
    notes += extra_notes
    for p in packages:
        fa2 = [e["target"] for e in p["evidence"] if e.get("role") == "fa2" and e.get("status") == PTX_JIT]
        if fa2:
            notes.append(
                f"vLLM's FlashAttention 2 holds PTX only for {', '.join(fa2)} (its published build is sm_80 + PTX): "
                "the driver JIT-compiles it at first start (minutes; kept in ~/.nv/ComputeCache)"
            )
        jit = [t for t, s in p["code_for_target"].items() if s == PTX_JIT]
        if jit:
            notes.append(
                f"{p['name']} has only PTX for {', '.join(jit)}: the driver JIT-compiles it at first start "
                "(minutes; kept in ~/.nv/ComputeCache)"
            )
    pins = [f"vllm=={v}", f"torch=={torch_v}"] + [f"{p['name']}=={p['version']}" for p in extra_pkgs]
    quoted = " ".join(f'"{p}"' for p in pins)
    if index:  # torch==X matches X+cuXYZ; the extra index offers it, and the local tag sorts above PyPI's X
        commands = [
            f"uv pip install {quoted} --extra-index-url {index} --index-strategy unsafe-best-match",
            f"pip install {quoted} --extra-index-url {index}",
        ]
    else:
        commands = [f"uv pip install {quoted}", f"pip install {quoted}"]
    commands += extra_cmds
    commands.append(f"bwdoctor check --target {' --target '.join(inp.targets)}   # after installing")
    return (
        {
            "kind": "wheels",
            "title": f"vLLM {v} + torch {trow['version']} (CUDA {trow.get('cuda')}) wheels from "
            + ("PyPI and the PyTorch index" if index else "PyPI"),
            "cuda": trow.get("cuda"),
            "packages": packages,
            "commands": commands,
            "env": {},
            "notes": notes,
        },
        [],
    )


def _extras(
    inp: Inputs, table: ReleaseTable, trow: Row, ceiling: Optional[Release]
) -> Tuple[List[Dict[str, Any]], List[str], List[str]]:
    """The --with packages that fit this torch: scanned rows whose pins match, else a note saying what to do."""
    pkgs: List[Dict[str, Any]] = []
    notes: List[str] = []
    cmds: List[str] = []
    torch_v = trow["version"].split("+", 1)[0]
    for name in inp.extras:
        if name == "flash-attn":
            from bwdoctor.checks.gpucode import flash_attn_fix

            notes.append(
                "flash-attn: PyPI has only its source; its prebuilt wheels are GitHub release assets named "
                f"flash_attn-VERSION+cu{(cuda_release(trow.get('cuda')) or (12, 0))[0]}torch"
                f"{'.'.join(torch_v.split('.')[:2])}cxx11abiTRUE-cpXY-cpXY-{inp.platform}.whl (not scanned here; "
                "setup.py builds FLASH_ATTN_CUDA_ARCHS=80;90;100;120 by default). vLLM ships its own FlashAttention "
                "(vllm_flash_attn) and does not need it. To build it: " + flash_attn_fix(parse_cc(inp.targets[0]))
            )
            continue
        dist = "flashinfer-python" if name == "flashinfer" else name
        rows = table.find(dist, None, inp.platform)
        fit = [r for r in rows if _pins_torch(r, torch_v)]
        if not rows:
            notes.append(f"{dist}: not in the release table (refresh it with tools/refresh_releases.py)")
            continue
        if not fit:
            pin = next((q for q in rows[0].get("requires") or [] if q.startswith("torch")), "?")
            notes.append(
                f"{dist} {rows[0]['version']} requires {pin}, not torch {torch_v}: take the {dist} wheel built "
                f"for torch {torch_v} from the PyTorch index, or build it with TORCH_CUDA_ARCH_LIST set"
            )
            continue
        row = fit[0]
        pkg = _package(row, inp.targets, trow.get("cuda"))
        if not row.get("files"):
            pkg["code_for_target"] = {}
            notes.append(
                f"{dist} {row['version']} holds no prebuilt GPU code: it compiles its kernels at run time for the "
                "GPU present (needs a CUDA toolkit whose nvcc supports the target)"
            )
        else:
            bad = _problems(row, pkg, inp, ceiling)
            if bad:
                notes.append(f"{dist}: {bad[0]['reason']}; left out")
                continue
        pkgs.append(pkg)
    return pkgs, notes, cmds


def _pins_torch(row: Row, torch_v: str) -> bool:
    """True when a row's Requires-Dist on torch admits torch_v (an exact pin must match; ranges are read)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    for q in row.get("requires") or []:
        m = re.match(r"^torch\s*([<>=!~][^;]*)", q)
        if m:
            try:
                return SpecifierSet(m.group(1).replace(" ", "")).contains(torch_v, prereleases=True)
            except InvalidSpecifier:
                return False
    return True


def arch_list_for(targets: Tuple[str, ...], nvcc: Release, suffixed: bool = False) -> str:
    """TORCH_CUDA_ARCH_LIST for these targets and this nvcc.

    For vLLM (suffixed=False) the plain X.Y of each target: native sm_XY cubins, and vLLM's CMake adds the
    'a'/'f' suffix to its own arch-specific kernels (FP8/FP4 GEMMs, attention) from the plain list, as the
    pre-build gate's BW702 says. For other CUDA extensions (suffixed=True) Hopper and Blackwell need the suffix
    themselves: block-scaled MMA and wgmma exist only for sm_90a / sm_100a / sm_120a... ('a' runs on exactly that
    GPU) or, with nvcc >= 12.9, the family target X.Yf (runs on every later minor of the major), which one entry
    uses for several Blackwell GPUs of one major."""
    ccs = sorted({parse_cc(t) for t in targets})
    if not suffixed:
        return ";".join(f"{c[0]}.{c[1]}" for c in ccs)
    out: List[str] = []
    by_major: Dict[int, List[CC]] = {}
    for cc in ccs:
        by_major.setdefault(cc[0], []).append(cc)
    for major, group in sorted(by_major.items()):
        if is_blackwell([major, 0]) and len(group) > 1 and nvcc >= (12, 9):
            out.append(f"{major}.{group[0][1]}f")
        elif is_blackwell([major, 0]) or (major, group[0][1]) == (9, 0):
            out += [f"{c[0]}.{c[1]}a" for c in group]
        else:
            out += [f"{c[0]}.{c[1]}" for c in group]
    return ";".join(out)


def _source_build(
    v: str, inp: Inputs, table: ReleaseTable, ceiling: Optional[Release], why: List[Dict[str, str]]
) -> Optional[Dict[str, Any]]:
    """Build vLLM v from source against a torch that runs here (the pre-build gate's conditions as steps)."""
    cands = _torch_candidates(table, inp, ceiling)
    vrows = table.find("vllm", v, inp.platform) or table.find("vllm", v)
    if not cands or (vrows and not _python_ok(vrows[0], inp.python)):
        return None
    pin = table.torch_pin(v, inp.platform)

    def pref(c: Tuple[Row, dict]) -> tuple:
        row = c[0]
        same = row["version"].split("+", 1)[0] == pin
        native = all(s == NATIVE for s in c[1]["code_for_target"].values())
        knows = cuda_covers_targets(row.get("cuda"), inp.targets)
        return (native, knows, same, version_key(row["version"]), row.get("kind") == "scanned")

    trow, tpkg = max(cands, key=pref)
    tver = trow["version"].split("+", 1)[0]
    cuda = cuda_release(trow.get("cuda")) or (12, 8)
    need = max((first_release(t) or (0, 0) for t in inp.targets), default=(0, 0))
    nvcc = max(cuda, need) if cuda[0] == need[0] or need == (0, 0) else cuda
    arch = arch_list_for(inp.targets, nvcc)
    entries = parse_torch_arch_list(arch) or []  # arch_list_for never writes "native"
    uncovered = [t for t in inp.targets if not covers(entries, t)]
    jobs = None
    if inp.ram_gib:
        from bwdoctor.checks.build import GIB_PER_COMPILE

        jobs = max(1, int(inp.ram_gib // GIB_PER_COMPILE))
        if inp.cores:
            jobs = min(jobs, inp.cores)
    env: Dict[str, str] = {"TORCH_CUDA_ARCH_LIST": arch}
    blackwell = any(is_blackwell(list(parse_cc(t))) for t in inp.targets)
    if blackwell:
        env["VLLM_FLASH_ATTN_VERSION"] = "2"
    env["MAX_JOBS"] = str(jobs) if jobs else "4"
    env["NVCC_THREADS"] = "1"
    index = trow.get("index_url")
    torch_cmd = f'uv pip install "torch=={trow["version"]}"' + (f" --index-url {index}" if index else "")
    exports = " ".join(f'{k}="{val}"' for k, val in env.items())
    nvcc_text = f"{nvcc[0]}.{nvcc[1]}"
    commands = [
        torch_cmd,
        f"git clone --branch v{v} --depth 1 https://github.com/vllm-project/vllm.git && cd vllm",
        "python use_existing_torch.py",
        "uv pip install -r requirements/build.txt",
        f"export CUDA_HOME=/usr/local/cuda-{nvcc_text} PATH=/usr/local/cuda-{nvcc_text}/bin:$PATH",
        f"export {exports}",
        f"bwdoctor prebuild --src . --target {' --target '.join(inp.targets)}   # the gate: exit 0 before building",
        "uv pip install --no-build-isolation -e .",
        f"bwdoctor verify-build vllm --target {' --target '.join(inp.targets)}",
    ]
    reasons = "; ".join(w["reason"] for w in why) or f"no prebuilt vLLM {v} set runs here"
    notes = [
        f"why a build: {reasons}",
        f"torch {trow['version']} ({trow.get('kind', 'scanned')}, CUDA {trow.get('cuda')}) runs on "
        + ", ".join(f"{t} {s}" for t, s in tpkg["code_for_target"].items()),
        f"use_existing_torch.py drops vLLM's torch=={pin} pin so the build uses the torch installed first"
        if pin and pin != tver
        else f"torch {tver} is the version vLLM {v} pins; use_existing_torch.py keeps pip from replacing it",
        f"nvcc {nvcc[0]}.x >= {nvcc_text} is required (same major as torch's CUDA {trow.get('cuda')}, new enough "
        f"for {', '.join(inp.targets)})",
    ]
    if blackwell:
        notes.append("VLLM_FLASH_ATTN_VERSION=2: FlashAttention 3 is built for Hopper (sm_90a) only")
    if jobs is None:
        notes.append(f"MAX_JOBS=4 assumed (RAM unknown): about {4 * 4} GiB at peak; lower it on a smaller machine")
    else:
        notes.append(f"MAX_JOBS={jobs}: {inp.ram_gib:.0f} GiB RAM at about 4 GiB per parallel compile")
    other = arch_list_for(inp.targets, nvcc, suffixed=True)
    if other != arch:
        notes.append(
            f'TORCH_CUDA_ARCH_LIST="{arch}" is right for vLLM (its CMake adds the a/f suffix to its arch-specific '
            f'kernels); other CUDA extensions built against this torch (flash-attn, xformers...) need "{other}"'
        )
    if uncovered:
        notes.append(f"warning: TORCH_CUDA_ARCH_LIST {arch} does not cover {', '.join(uncovered)}")
    return {
        "kind": "source-build",
        "title": f"build vLLM {v} from source against torch {trow['version']} (CUDA {trow.get('cuda')})",
        "cuda": trow.get("cuda"),
        "packages": [tpkg],
        "commands": commands,
        "env": env,
        "nvcc": nvcc_text,
        "notes": notes,
    }
