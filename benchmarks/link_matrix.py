#!/usr/bin/env python3
"""bwdoctor's link verdicts (nothing imported) against real imports, for each given environment.

    python benchmarks/link_matrix.py VENV_PYTHON [VENV_PYTHON ...]

For every compiled extension module of vLLM, xformers, torchvision, torchaudio, flash-attn... in the
environment, prints bwdoctor's verdict (loads / fails + cause) beside what `python -c "import M"` does
in a subprocess of that environment, and counts agreements. Also times bwdoctor against `ldd -r`.
"""
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bwdoctor import engine, registry  # noqa: E402
from bwdoctor.context import Context  # noqa: E402
from bwdoctor.elf.distfiles import record_elf_files  # noqa: E402
from bwdoctor.elf.dynlink import interpreter_loader  # noqa: E402
from bwdoctor.probes.links import EXTENSION_DISTS, _requires_torch, dist_results  # noqa: E402


def real_import(py, module):
    res = subprocess.run([py, "-c", f"import {module}"], capture_output=True, text=True, timeout=300)
    lines = res.stderr.strip().splitlines()
    err = next((l for l in reversed(lines) if "Error" in l or "what()" in l or "error" in l), lines[-1] if lines else "")
    if res.returncode < 0:
        err = f"killed by signal {-res.returncode}: {err}"
    return res.returncode == 0, err.strip()[:110]


def top_level(d):
    """The import names of a distribution (top_level.txt, else the first path parts of its RECORD)."""
    di = Path(d["dist_info"])
    try:
        names = [n.strip() for n in (di / "top_level.txt").read_text().split() if n.strip().isidentifier()]
        if names:
            return names[:2]
    except OSError:
        pass
    names = []
    for line in (di / "RECORD").read_text().splitlines():
        first = line.split(",")[0].split("/")[0]
        if first.isidentifier() and first not in names:
            names.append(first)
    return names[:2]


def main(pythons):
    rows, agree, total = [], 0, 0
    timing = []
    for py in pythons:
        reg = registry.load(no_plugins=True)
        ctx = Context(python=py)
        facts, _ = engine.gather(reg, ctx, ["python_env", "distributions", "torch_build"])
        tb = facts["torch_build"] if isinstance(facts["torch_build"], dict) else None
        torch_dir = (Path(tb["location"]) / "torch") if tb else None
        dists = [d for d in facts["distributions"]
                 if d["name"] != "torch" and (d["name"] in EXTENSION_DISTS or _requires_torch(d))]
        paths_of = {d["name"]: record_elf_files(d["dist_info"], d["location"], shared_only=True)[0] for d in dists}

        def bwdoctor_run():
            ld, _ = interpreter_loader(facts["python_env"], "/", {}, str(torch_dir) if torch_dir else None)
            return {d["name"]: dist_results(ld, paths_of[d["name"]], d["location"], tb) for d in dists}

        bwdoctor_run()  # warm the page cache for both tools
        t0 = time.perf_counter()
        results = bwdoctor_run()
        bw_secs = time.perf_counter() - t0
        all_paths = [p for d in dists for p in paths_of[d["name"]]]
        if shutil.which("ldd") and all_paths:
            t0 = time.perf_counter()
            for p in all_paths:
                subprocess.run(["ldd", "-r", p], capture_output=True, timeout=120)
            timing.append((py, len(all_paths), bw_secs, time.perf_counter() - t0))
        tv = tb["version"] if tb else "none"
        pins = {}
        for d in dists:
            req = next((r for r in d.get("requires") or [] if r.split(";")[0].strip().startswith("torch")
                        and r.split(";")[0].strip()[5:6] in "=<>!~ "), None)
            if req and tb:
                from packaging.requirements import Requirement
                from packaging.version import Version

                r = Requirement(req.split(";")[0])
                if str(r.specifier) and not r.specifier.contains(Version(tb["version"]), prereleases=True):
                    pins[d["name"]] = str(r.specifier)
        for d in dists:
            fails = [r for r in results[d["name"]] if not r["loads"]]
            # the import bwdoctor says fails (evidence.import), else the package's own import names
            tops = [fails[0]["import"]] if fails else top_level(d)
            for top in tops:
                link = f"fails: {fails[0]['cause']}" if fails else "links"
                pin = f"pins torch{pins[d['name']]}" if d["name"] in pins else "pin ok"
                predicted_ok = not fails and d["name"] not in pins
                ok, msg = real_import(py, top)
                same = ok == predicted_ok
                agree += same
                total += 1
                rows.append((tv, f"{d['name']} {d['version']}", top, link, pin,
                             "ok" if ok else f"fails: {msg}", "yes" if same else "NO"))
    print("| torch | package | import | bwdoctor links | bwdoctor pins | python -c import | agree |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n{agree}/{total} agree")
    for py, n, bw, ldd in timing:
        print(f"{py}: {n} libraries; bwdoctor {bw:.2f} s, ldd -r {ldd:.2f} s, ratio x{ldd / bw:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
