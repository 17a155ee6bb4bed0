"""Checks run before a source build of vLLM / flash-attn (group pre-build, family build, BW7xx)."""

from __future__ import annotations

import posixpath

from bwdoctor.archlist import ArchListError, covers, parse_cmake_architectures, parse_torch_arch_list
from bwdoctor.domain.arch import is_blackwell
from bwdoctor.domain.versions import parse_version
from bwdoctor.model import Location, Pass, Problem, Skip
from bwdoctor.registry import check

GIB = 1 << 30
# Peak host memory of one nvcc compile thread on vLLM's CUTLASS/FA kernels. An estimate: flash-attn's
# README says builds exhaust RAM below ~96 GB with many cores (ninja's default job count), vLLM's
# installation guide tells users to lower MAX_JOBS, and users report MAX_JOBS 2–4 working on 64–128 GB.
GIB_PER_COMPILE = 4
DISK_ERROR_GIB, DISK_WARN_GIB = 10, 30
PRE = ("pre-build",)


@check("BW701", "arch-list-covers-target", severity="error", kb="torch-cuda-arch-list", groups=PRE, optional=("gpus",))
def arch_list_covers_target(targets, build_env, gpus=None):
    """TORCH_CUDA_ARCH_LIST / CMAKE_CUDA_ARCHITECTURES include every target GPU."""
    if not targets:
        return Skip("no target architecture (pass --target sm_120)")
    lists = [
        (k, build_env.get(v))
        for k, v in (
            ("TORCH_CUDA_ARCH_LIST", "torch_cuda_arch_list"),
            ("CMAKE_CUDA_ARCHITECTURES", "cmake_cuda_architectures"),
        )
        if build_env.get(v)
    ]
    if not lists:
        return Problem(
            "TORCH_CUDA_ARCH_LIST is not set: the build targets the GPUs visible at build time, or every "
            "architecture torch knows on a host without one (hours longer, more memory)",
            {
                "fix": 'export TORCH_CUDA_ARCH_LIST="'
                + ";".join(f"{int(t[3:]) // 10}.{int(t[3:]) % 10}" for t in targets)
                + '"'
            },
            severity="info",
        )
    out = []
    for var, value in lists:
        try:
            entries = (
                parse_torch_arch_list(value) if var == "TORCH_CUDA_ARCH_LIST" else parse_cmake_architectures(value)
            )
        except ArchListError as exc:
            out.append(Problem(f"{var}={value!r}: {exc}", {var: value}))
            continue
        if entries is None and var == "TORCH_CUDA_ARCH_LIST" and isinstance(gpus, list) and not gpus:
            out.append(  # torch 2.13 _get_cuda_arch_flags: arch_list = [] then arch_list[-1] += '+PTX'
                Problem(
                    f"{var}=native on a machine with no GPU visible: torch's extension build fails (IndexError in "
                    "_get_cuda_arch_flags) or builds nothing for the target",
                    {
                        var: value,
                        "fix": f'export {var}="'
                        + ";".join(f"{int(t[3:]) // 10}.{int(t[3:]) % 10}" for t in targets)
                        + '"',
                    },
                )
            )
            continue
        if entries is None:
            who = "torch" if var == "TORCH_CUDA_ARCH_LIST" else "CMake"
            out.append(
                Pass(
                    f"{var}={value}: {who} builds for the GPUs visible at build time"
                    if value.strip() == "native"
                    else f"{var}={value}: CMake picks the architectures"
                )
            )
            continue
        for t in targets:
            n = int(t[3:])
            want = f"{n // 10}.{n % 10}" if var == "TORCH_CUDA_ARCH_LIST" else str(n)
            e = covers(entries, t)
            if e is None:
                out.append(
                    Problem(
                        f"{var}={value!r} has no code for {t}: the build 'succeeds' and then fails at run time with "
                        "'no kernel image is available for execution on the device'",
                        {var: value, "target": t, "fix": f'export {var}="{value};{want}"'},
                    )
                )
            elif e["via"] == "ptx":
                out.append(
                    Problem(
                        f"{var}={value!r} gives {t} only PTX ({e['arch']}): every cold start JIT-compiles",
                        {var: value, "target": t, "fix": f"add {want} to {var}"},
                        severity="warning",
                    )
                )
            else:
                out.append(Pass(f"{var} builds {e['arch']} for {t}"))
    return out


@check("BW702", "arch-suffix-fits-targets", severity="warning", kb="arch-suffix-missing", groups=PRE)
def arch_suffix_fits_targets(targets, build_env):
    """Arch-specific ('a') and family ('f') entries of the arch list suit every target GPU."""
    value = build_env.get("torch_cuda_arch_list")
    if not value or not targets:
        return Skip("TORCH_CUDA_ARCH_LIST not set or no target")
    try:
        entries = parse_torch_arch_list(value)
    except ArchListError as exc:
        return Skip(str(exc))
    if entries is None:
        return Skip(f"TORCH_CUDA_ARCH_LIST={value}: the architectures are those of the GPUs visible at build time")
    out = []
    for t in targets:
        n = int(t[3:])
        exact = [e for e in entries if e["cc"] == [n // 10, n % 10]]
        a_only = [e for e in entries if e["suffix"] == "a" and e["cc"][0] == n // 10 and e["cc"] != [n // 10, n % 10]]
        if a_only and covers(entries, t) is None:
            out.append(
                Problem(
                    f"{a_only[0]['arch']} code runs only on exactly that GPU, not on {t}: use the family target "
                    f"{a_only[0]['cc'][0]}.{a_only[0]['cc'][1]}f (CUDA 12.9+) or add {n // 10}.{n % 10}",
                    {"target": t, "fix": f'export TORCH_CUDA_ARCH_LIST="{a_only[0]["cc"][0]}.{a_only[0]["cc"][1]}f"'},
                )
            )
        elif n // 10 in (10, 12) and exact and all(e["suffix"] == "" for e in exact):
            out.append(
                Problem(
                    f"{t} is listed without 'a'/'f': kernels using block-scaled MMA (NVFP4/MXFP4 GEMMs) need "
                    f"{n // 10}.{n % 10}a or {n // 10}.{n % 10}f; vLLM's CMake adds the suffix for its own FP4 "
                    "kernels, other projects fail in ptxas ('not supported on .target sm_120')",
                    {"target": t},
                    severity="info",
                )
            )
    return out or None


@check("BW703", "no-fa3-on-blackwell", severity="error", kb="fa3-blackwell", groups=("pre-build", "runtime"))
def no_fa3_on_blackwell(targets, build_env):
    """VLLM_FLASH_ATTN_VERSION does not force FlashAttention 3 on Blackwell."""
    bw = [t for t in targets if is_blackwell([int(t[3:]) // 10, int(t[3:]) % 10])]
    fa = build_env.get("vllm_flash_attn_version")
    if fa != "3":
        return Pass(f"VLLM_FLASH_ATTN_VERSION={fa or 'unset'}")
    if not bw:
        return Pass("VLLM_FLASH_ATTN_VERSION=3 on a non-Blackwell target")
    return Problem(
        f"VLLM_FLASH_ATTN_VERSION=3 with target {', '.join(bw)}: FlashAttention 3 is Hopper-only; vLLM refuses it on "
        "Blackwell ('FA3 is only supported on devices with compute capability >= 8 excluding 8.6 and 8.9 and "
        "Blackwell archs (>=10)')",
        {"fix": "export VLLM_FLASH_ATTN_VERSION=2"},
    )


@check("BW704", "build-jobs-fit-memory", severity="error", kb="build-oom", groups=PRE)
def build_jobs_fit_memory(build_env):
    """MAX_JOBS × NVCC_THREADS parallel compiles fit in RAM (about 4 GiB each)."""
    mem, cores = build_env.get("mem_total"), build_env.get("cores")
    if not mem or not cores:
        return Skip("RAM or core count unknown")
    jobs = build_env.get("max_jobs") or cores
    threads = build_env.get("nvcc_threads") or 1
    jobs_eff = max(1, jobs // threads) if build_env.get("nvcc_threads") else jobs  # vLLM's setup.py divides
    need = jobs_eff * threads * GIB_PER_COMPILE * GIB
    safe = max(1, int(mem / GIB // GIB_PER_COMPILE))
    how = (
        f"MAX_JOBS={build_env.get('max_jobs') if build_env.get('max_jobs') is not None else f'unset (= {cores} cores)'}"
    )
    if build_env.get("nvcc_threads"):
        how += f", NVCC_THREADS={threads}"
    ev = {
        "max_jobs": build_env.get("max_jobs"),
        "nvcc_threads": build_env.get("nvcc_threads"),
        "cores": cores,
        "mem_total_gib": round(mem / GIB, 1),
        "estimated_peak_gib": need // GIB,
    }
    if need <= mem:
        return Pass(f"{how}: about {need // GIB} GiB at peak, {mem / GIB:.0f} GiB RAM")
    return Problem(
        f"{how} runs {jobs_eff * threads} compiles at once, about {need // GIB} GiB at peak (~{GIB_PER_COMPILE} GiB "
        f"each), but the machine has {mem / GIB:.0f} GiB: the compiler is OOM-killed an hour in ('Killed', "
        "'Error compiling objects for extension')",
        dict(ev, fix=f"export MAX_JOBS={safe} NVCC_THREADS=1"),
    )


@check("BW705", "build-disk-space", severity="error", kb="build-oom", groups=PRE)
def build_disk_space(build_env):
    """The build directory and TMPDIR have room for a CUDA build (30 GiB advised)."""
    disks = build_env.get("disk") or {}
    if not disks:
        return Skip("free disk space not measured (replayed facts)")
    out = []
    for label, d in disks.items():
        if "free" not in d:
            out.append(Skip(f"{d.get('path')}: {d.get('error')}"))
            continue
        free = d["free"] / GIB
        if free < DISK_ERROR_GIB:
            out.append(
                Problem(
                    f"{d['path']} ({label}) has {free:.1f} GiB free; a vLLM build needs 10–30 GiB "
                    "(objects, wheel, pip temp files)",
                    {
                        "path": d["path"],
                        "free_gib": round(free, 1),
                        "fix": "free space or point TMPDIR at a larger disk",
                    },
                )
            )
        elif free < DISK_WARN_GIB:
            out.append(
                Problem(
                    f"{d['path']} ({label}) has {free:.1f} GiB free; a full build can take up to 30 GiB",
                    {"path": d["path"], "free_gib": round(free, 1)},
                    severity="warning",
                )
            )
        else:
            out.append(Pass(f"{d['path']} ({label}): {free:.0f} GiB free"))
    return out


@check("BW706", "cuda-home-matches-nvcc", severity="warning", kb="nvcc-too-old", groups=PRE)
def cuda_home_matches_nvcc(build_env):
    """CUDA_HOME, CMAKE_CUDA_COMPILER and the nvcc on PATH name the same toolkit."""
    seen = {}
    if build_env.get("cuda_home"):
        seen["CUDA_HOME"] = posixpath.join(build_env["cuda_home"], "bin", "nvcc")
    if build_env.get("cmake_cuda_compiler"):
        seen["CMAKE_CUDA_COMPILER"] = build_env["cmake_cuda_compiler"]
    if build_env.get("nvcc_on_path"):
        seen["PATH"] = build_env["nvcc_on_path"]
    resolved = build_env.get("nvcc_realpaths") or {}  # symlinks resolved by the build_env probe
    real = {k: resolved.get(v, v) for k, v in seen.items()}
    if len(set(real.values())) <= 1:
        return Pass("one toolkit: " + (next(iter(seen.values())) if seen else "no nvcc configured"))
    return Problem(
        "different nvcc for different build steps: "
        + ", ".join(f"{k} → {v}" for k, v in seen.items())
        + ": CMake, torch's extension builder and ninja may each use another CUDA",
        {"nvcc": seen, "fix": "point CUDA_HOME, CMAKE_CUDA_COMPILER and PATH at one toolkit"},
    )


@check("BW707", "host-compiler-supported", severity="error", kb="host-compiler-unsupported", groups=PRE)
def host_compiler_supported(build_env):
    """The host gcc is one the nvcc in use accepts."""
    gcc, lim = build_env.get("gcc"), build_env.get("nvcc_gcc_max")
    if not gcc or not lim:
        return Skip("gcc or nvcc's host compiler limit unknown")
    try:
        major = int(gcc["version"].split(".")[0])
    except (ValueError, KeyError):
        return Skip(f"gcc version {gcc.get('version')!r} not numeric")
    if major <= lim["max_major"]:
        return Pass(f"gcc {gcc['version']} is accepted by {build_env.get('nvcc')} (up to gcc {lim['max_major']})")
    return Problem(
        f"gcc {gcc['version']} ({gcc['path']}) is newer than {build_env.get('nvcc')} accepts (gcc "
        f"{lim['max_major']} at most, {lim['source']}): nvcc stops with '#error -- unsupported GNU version!'",
        {
            "gcc": gcc["version"],
            "max": lim["max_major"],
            "fix": f"install gcc-{lim['max_major']} and export CC=gcc-{lim['max_major']} CXX=g++-{lim['max_major']} "
            f"NVCC_CCBIN=gcc-{lim['max_major']} (or a newer CUDA)",
        },
    )


@check("BW708", "python-headers-present", severity="error", kb="python-headers-missing", groups=PRE)
def python_headers_present(build_env):
    """Python.h is installed for the interpreter that builds."""
    if not build_env.get("python_include"):
        return Skip("the interpreter's include directory is unknown")
    if build_env.get("python_h"):
        return Pass(f"Python.h found in {build_env['python_include']}")
    return Problem(
        f"no Python.h in {build_env['python_include']}: the extension build fails with "
        "'fatal error: Python.h: No such file or directory'",
        {
            "path": build_env["python_include"],
            "fix": "install the Python development headers (e.g. apt install python3-dev / python3.12-dev)",
        },
    )


@check("BW709", "ccache-available", severity="info", kb="ccache-missing", groups=PRE)
def ccache_available(build_env):
    """ccache is installed, so rebuilds reuse compiled objects."""
    if build_env.get("ccache"):
        return Pass(f"ccache at {build_env['ccache']}")
    return Problem(
        "ccache is not installed: every rebuild of vLLM recompiles all CUDA kernels (often an hour or more)",
        {"fix": "apt install ccache (vLLM's CMake uses it automatically)"},
    )


@check("BW710", "source-tree-accepts-torch", severity="error", kb="torch-pin-conflict", groups=PRE)
def source_tree_accepts_torch(source_tree, torch_build):
    """The source tree's torch pins accept the installed torch (or use_existing_torch.py was run)."""
    tv = parse_version(torch_build["version"])
    if tv is None:
        return Skip(f"torch version {torch_build['version']!r} not PEP 440")
    out = []
    from packaging.requirements import InvalidRequirement, Requirement  # only when a pin is read

    for pin in source_tree["torch_pins"]:
        try:
            req = Requirement(pin["requirement"])
        except InvalidRequirement:
            continue
        if req.specifier.contains(tv, prereleases=True):
            continue
        fix = (
            "python use_existing_torch.py (in the source tree), then pip install --no-build-isolation -e ."
            if source_tree.get("use_existing_torch") or source_tree.get("is_vllm")
            else f"install torch{req.specifier} or edit the pin"
        )
        out.append(
            Problem(
                f"{pin['file']}:{pin['line']} pins {pin['requirement']}, but torch {torch_build['version']} is "
                "installed: pip builds against (or installs) the pinned torch instead of yours",
                {"file": pin["file"], "requirement": pin["requirement"], "torch": torch_build["version"], "fix": fix},
                location=Location(f"{source_tree['path']}/{pin['file']}", pin["line"], pin["column"]),
            )
        )
    if out:
        return out
    return Pass(
        "no torch pin in the tree" + (" (use_existing_torch.py has been run)" if source_tree.get("is_vllm") else "")
        if not source_tree["torch_pins"]
        else f"the tree's torch pins accept {torch_build['version']}"
    )
