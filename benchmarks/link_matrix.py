#!/usr/bin/env python3
"""bwdoctor's link verdicts (nothing imported) against real imports, for each given environment.

    python benchmarks/link_matrix.py VENV_PYTHON [VENV_PYTHON ...]

For every compiled-extension distribution of the environment (vLLM, xformers, torchvision, torchaudio,
flash-attn..., anything linking libtorch) it runs the extension_links probe and check BW401,
then `python -c "import M"` in a subprocess of that environment for the package's top-level modules and
for every import BW401 says fails. Verdicts: "fails: cause" (BW401, an import fails), "warns: cause"
(a library loaded inside try/except: the import succeeds), "pin: torch X" (BW401 without an import: links, but
built for another torch), "links". Agreement: fails ⇔ the import fails; warns ⇒ it succeeds; pin ⇒ it fails
(crash included) — a pin-only row whose import succeeds is counted as a disagreement.
"""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bwdoctor import engine, registry  # noqa: E402
from bwdoctor.checks import linking  # noqa: E402
from bwdoctor.context import Context  # noqa: E402
from bwdoctor.testing import run_check  # noqa: E402


def real_import(py, module):
    """(succeeded, the last error line or the warning printed) of `python -c "import module"`."""
    res = subprocess.run([py, "-c", f"import {module}"], capture_output=True, text=True, timeout=300, cwd="/")
    lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
    if res.returncode == 0:
        warn = next((l for l in lines if "WARNING[" in l), "") or next(
            (l for l in lines if "WARNING" in l or "Warning" in l), ""
        )
        return True, warn.strip()[:90]
    err = next((l for l in reversed(lines) if "Error" in l or "what()" in l), lines[-1] if lines else "")
    if res.returncode < 0:
        err = f"killed by signal {-res.returncode}" + (f" ({err.strip()[:60]})" if err else "")
    return False, err.strip()[:110]


def top_level(dist_info):
    """The import names of a distribution (top_level.txt, else the first path parts of its RECORD)."""
    di = Path(dist_info)
    try:
        names = [n.strip() for n in (di / "top_level.txt").read_text().split() if n.strip().isidentifier()]
        if names:
            return [n for n in names if not n.startswith("_")][:2] or names[:1]
    except OSError:
        pass
    names = []
    for line in (di / "RECORD").read_text().splitlines():
        first = line.split(",")[0].split("/")[0]
        if first.isidentifier() and not first.startswith("_") and first not in names:
            names.append(first)
    return names[:2]


def main(pythons):
    rows, agree, total = [], 0, 0
    reg = registry.load(no_plugins=True)
    for py in pythons:
        t0 = time.perf_counter()
        facts, _ = engine.gather(reg, Context(python=py), ["extension_links", "torch_build"])
        secs = time.perf_counter() - t0
        el, tb = facts["extension_links"], facts["torch_build"]
        facts_in = {"extension_links": el, "torch_build": tb}
        bw401 = [f for f in run_check(linking.extensions_load, facts_in) if getattr(f, "evidence", None)]
        bw402 = [
            f for f in bw401 if f.evidence.get("built_for") and "import" not in f.evidence and f.severity != "warning"
        ]
        bw401 = [f for f in bw401 if f not in bw402]
        tv = tb["version"] if isinstance(tb, dict) else "none"
        print(f"{py}: torch {tv}; extension_links + python_env + distributions in {secs:.2f} s", file=sys.stderr)
        for e in el["extensions"]:
            name = e["distribution"]
            hard = {
                f.evidence["import"]: f.evidence["cause"]
                for f in bw401
                if f.evidence.get("distribution") == name and f.evidence.get("import") and f.severity != "warning"
            }
            soft = [
                f.evidence["cause"]
                for f in bw401
                if f.evidence.get("distribution") == name and "import" not in f.evidence
            ]
            pin = next((f for f in bw402 if f.evidence.get("distribution") == name), None)
            tops = top_level(e["dist_info"])
            pkg_fails = next((c for h, c in hard.items() if "." not in h), None)  # e.g. import torchaudio fails
            for imp in list(dict.fromkeys([*hard, *tops])):
                built = pin.evidence["built_for"] if pin is not None else None
                pin_text = f"pin: built for torch {built.get('torch') or built.get('range')}" if built else ""
                if imp in hard:
                    verdict, want_ok = f"fails: {hard[imp]}", False
                elif any(imp == h.split(".")[0] for h in hard):
                    continue  # the package import itself is judged through the module that fails
                elif pkg_fails:  # another top-level module of the same distribution (torio of torchaudio)
                    verdict, want_ok = f"fails: {pkg_fails} (its package's library)", False
                elif soft:  # the import succeeds with a warning; a pin is an extra warning here
                    verdict, want_ok = f"warns: {soft[0]}" + (f" (+ {pin_text})" if pin_text else ""), True
                elif pin_text:
                    verdict, want_ok = pin_text, False
                else:
                    verdict, want_ok = "links", True
                if soft and not verdict.startswith("warns"):
                    verdict += f" (+ warns: {soft[0]})"
                ok, msg = real_import(py, imp)
                same = ok == want_ok
                agree += same
                total += 1
                rows.append(
                    (
                        tv,
                        f"{name} {e['version']}",
                        imp,
                        verdict,
                        ("ok" + (f" ({msg})" if msg else "")) if ok else f"fails: {msg}",
                        "yes" if same else "NO",
                    )
                )
    print("| torch | package | import | bwdoctor (nothing imported) | python -c import | agree |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(r.replace("|", "/") for r in row) + " |")
    print(f"\n{agree}/{total} agree")


if __name__ == "__main__":
    main(sys.argv[1:])
