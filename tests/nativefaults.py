"""Fake libnvidia-ml.so.1 builds whose nvmlInit misbehaves, for the native-isolation tests and benchmarks.

One real shared object (gcc) per mode, each in its own directory so that LD_LIBRARY_PATH=<dir> makes pynvml's
dlopen("libnvidia-ml.so.1") find it first:
  segfault - nvmlInit dereferences NULL (SIGSEGV)
  exit     - nvmlInit calls exit(0): the process ends "successfully" mid-query
  hang     - nvmlInit sleeps for ten minutes
  error    - nvmlInit returns NVML_ERROR_DRIVER_NOT_LOADED (9)
  garbage  - nvmlInit prints a forged result to stdout, then succeeds; no GPU is reported
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Optional

MODES = ("segfault", "exit", "hang", "error", "garbage")
FORGED_DRIVER = "999.99.99"

SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static int init(void) {
    MODE_BODY
}
int nvmlInit_v2(void) { return init(); }
int nvmlInit(void) { return init(); }
int nvmlInitWithFlags(unsigned int flags) { (void)flags; return init(); }
int nvmlShutdown(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned int *count) { *count = 0; return 0; }
int nvmlDeviceGetCount(unsigned int *count) { *count = 0; return 0; }
const char *nvmlErrorString(int r) { (void)r; return "Driver Not Loaded"; }
"""

BODIES = {
    "segfault": "volatile int *p = (int *)0; return *p;",
    "exit": "exit(0);",
    "hang": "sleep(600); return 0;",
    "error": "return 9;",
    "garbage": (
        'printf("not json at all\\n{\\"stage\\": \\"done\\"}\\n");'
        'printf("{\\"result\\": {\\"driver\\": \\"' + FORGED_DRIVER + '\\", \\"gpus\\": []}}\\n");'
        'printf("{\\"stage\\": \\"done\\"}\\n"); fflush(stdout); return 0;'
    ),
}


def build(work: Path, mode: str) -> Optional[Path]:
    """The directory holding a fake libnvidia-ml.so.1 of this mode (built once); None without gcc."""
    d = Path(work) / f"fake-nvml-{mode}"
    lib = d / "libnvidia-ml.so.1"
    if lib.exists():
        return d
    if not shutil.which("gcc"):
        return None
    d.mkdir(parents=True, exist_ok=True)
    src = d / "fake_nvml.c"
    src.write_text(SOURCE.replace("MODE_BODY", BODIES[mode]))
    res = subprocess.run(["gcc", "-shared", "-fPIC", "-O0", "-o", str(lib), str(src)], capture_output=True, timeout=60)
    return d if res.returncode == 0 else None
