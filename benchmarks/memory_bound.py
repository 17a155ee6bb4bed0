#!/usr/bin/env python3
"""Peak memory of bwdoctor's readers on large real libraries (default: every .so over 100 MB found under
the given directories). Prints file size, peak RSS growth and time per file; each file in a fresh process.

    python benchmarks/memory_bound.py DIR [DIR ...]
"""

import os
import subprocess
import sys

CHILD = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
from bwdoctor.elf.fatbin import scan_file
from bwdoctor.elf.dynlink import Loader
r = scan_file(sys.argv[1])
Loader("/").check(sys.argv[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, time.perf_counter() - t, r["entries"], r["error"])
"""


def main(dirs):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = []
    for d in dirs:
        for dp, _, names in os.walk(d):
            for n in names:
                p = os.path.join(dp, n)
                if ".so" in n and os.path.isfile(p) and os.path.getsize(p) > 100 << 20:
                    files.append(p)
    print(f"{'file':<60} {'MiB':>6} {'peak RSS +MiB':>14} {'s':>6} {'entries':>8}")
    for p in sorted(files, key=os.path.getsize, reverse=True):
        out = subprocess.run([sys.executable, "-c", CHILD, p, root], capture_output=True, text=True, timeout=600)
        kb, secs, entries, err = out.stdout.split(maxsplit=3)
        print(
            f"{os.path.basename(p)[:60]:<60} {os.path.getsize(p) / 2**20:6.0f} {int(kb) / 1024:14.1f} "
            f"{float(secs):6.2f} {entries:>8} {err.strip() if err.strip() != 'None' else ''}"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["."])
