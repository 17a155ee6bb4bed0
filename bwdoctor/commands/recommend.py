"""`bwdoctor recommend`: the install set that works for a GPU, driver, CPU and Python, before anything is installed.

Options name the machine to plan for; what they leave out is read from this machine (or --root / --facts) through
the probes `check` uses: GPUs and targets, the driver and its kernel-module flavour, the CPU flags and RAM, the
Python. The plan itself comes from bwdoctor.recommend (a pure function of these inputs and the release table)."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from ..errors import UsageError
from ..model import Outcome, Unavailable
from ..render import add_format_option
from .common import source_from_args, split_terms

HELP = """Print ranked install plans for vLLM on the GPU(s), driver, CPU and Python given (or found here): the
wheels to install (with the GPU code each holds for every target, and the file that holds it), the exact uv/pip
commands, a source build when no prebuilt set works, and what blocks everything (driver, kernel module, CPU).
The answers come from a release table shipped with bwdoctor (wheels scanned with its own fatbin reader, plus
declared rows citing upstream build files); no network is used. Exit 0 a plan exists; 1 nothing can work
until a blocker is fixed; 2 bad input."""
PLATFORMS = ("linux_x86_64", "linux_aarch64")


def register(sub: Any, epilog: str = "") -> None:
    """Add `recommend`."""
    p = sub.add_parser(
        "recommend", help="which wheels (or which build) work for this GPU, driver and CPU", description=HELP
    )
    p.add_argument("--driver", metavar="X.Y.Z", help="NVIDIA driver version (default: the loaded driver)")
    p.add_argument(
        "--kernel-module",
        choices=("open", "proprietary"),
        help="the driver's kernel-module flavour (default: the loaded one; unknown with --driver)",
    )
    p.add_argument("--platform", choices=PLATFORMS, help="wheel platform (default: this Python's)")
    p.add_argument("--python-version", metavar="3.X", help="Python version (default: the inspected environment's)")
    p.add_argument(
        "--cpu-flags",
        action="append",
        default=[],
        metavar="FLAGS",
        help="CPU flags or x86-64 level, comma-separated (avx2, avx512f, x86-64-v3; default: /proc/cpuinfo)",
    )
    p.add_argument("--vllm", metavar="VERSION|latest", help="the vLLM release to plan for (default: latest that works)")
    p.add_argument(
        "--with",
        dest="extras",
        action="append",
        default=[],
        metavar="PKG",
        help="also plan these, comma-separated: flash-attn, xformers, flashinfer, bitsandbytes",
    )
    p.add_argument("--ram-gib", type=float, metavar="GIB", help="RAM for MAX_JOBS of a source build (default: here)")
    p.add_argument("--facts", metavar="FILE", help="plan for facts saved by 'bwdoctor facts' instead of this machine")
    add_format_option(p, "recommend")
    p.set_defaults(func=run)


DRIVER_RE = re.compile(r"\d{2,4}(\.\d{1,4}){0,2}")


def _driver_from(facts: Dict[str, Any]) -> tuple:
    """(driver version, module flavour) the machine reports; a version that is not one counts as unknown."""
    drv = facts.get("nvidia_driver")
    flavour = drv.get("flavour") if isinstance(drv, dict) and drv.get("flavour") in ("open", "proprietary") else None
    for value in (
        (drv or {}).get("version") if isinstance(drv, dict) else None,
        (facts.get("nvml") or {}).get("driver") if isinstance(facts.get("nvml"), dict) else None,
    ):
        if isinstance(value, str) and DRIVER_RE.fullmatch(value.strip()):
            return value.strip(), flavour
    return None, flavour


def run(args: Any) -> Outcome:
    """The bwdoctor.recommend/1 document; exit 0 a plan exists, 1 everything is blocked."""
    from .. import engine
    from ..domain.arch import arch_key, normalize_target
    from ..domain.versions import driver_version_tuple
    from ..recommend import Inputs, load_table, plan
    from ..recommend.planner import EXTRAS

    extras = [e.lower() for e in split_terms(args.extras)]
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise UsageError(f"--with {', '.join(unknown)}: known: {', '.join(EXTRAS)}")
    if args.driver is not None and (driver_version_tuple(args.driver) is None or not DRIVER_RE.fullmatch(args.driver)):
        raise UsageError(f"--driver {args.driver!r}: expected a driver version like 570.153.02")
    if args.python_version is not None and not re.fullmatch(r"3\.\d{1,2}", args.python_version):
        raise UsageError(f"--python-version {args.python_version!r}: expected 3.X (e.g. 3.12)")
    if args.vllm is not None and not re.fullmatch(r"latest|\d+(\.\d+){1,3}(\.post\d+)?", args.vllm):
        raise UsageError(f"--vllm {args.vllm!r}: expected a version like 0.11.0, or latest")
    if args.ram_gib is not None and not (0 < args.ram_gib < 1 << 20):
        raise UsageError(f"--ram-gib {args.ram_gib}: out of range")
    flags = [f.lower() for f in split_terms(args.cpu_flags)]
    origin: Dict[str, str] = {}
    source = source_from_args(args)  # validates --root, --target, --python, --facts
    targets = sorted({normalize_target(t) for t in source.context.targets}, key=arch_key)
    need = []
    if not targets:
        need += ["targets", "gpus"]
    if args.driver is None:
        need += ["nvidia_driver"]
    if not flags or args.ram_gib is None:
        need += ["host"]
    if args.platform is None or args.python_version is None:
        need += ["python_env"]
    facts: Dict[str, Any] = {}
    if need:
        facts, _ = engine.gather_facts(need, source)
    origin["targets"] = "option" if targets else "machine"
    if not targets and isinstance(facts.get("targets"), list):
        targets = [t for t in facts["targets"] if isinstance(t, str)]
    driver, module = args.driver, args.kernel_module
    origin["driver"] = "option" if driver else "machine"
    if driver is None:
        driver, found_module = _driver_from(facts)
        module = module or found_module
        if driver is None:
            origin["driver"] = "unknown"
    host: Dict[str, Any] = facts["host"] if isinstance(facts.get("host"), dict) else {}
    cpu: Dict[str, Any] = host["cpu"] if isinstance(host.get("cpu"), dict) else {}
    cpu_flags: Optional[frozenset] = frozenset(flags) if flags else None
    complete = False
    origin["cpu_flags"] = "option" if flags else "machine"
    if cpu_flags is None and isinstance(cpu.get("flags"), list) and cpu["flags"]:
        cpu_flags, complete = frozenset(str(f) for f in cpu["flags"]), True
    elif cpu_flags is None:
        origin["cpu_flags"] = "unknown"
    pyenv: Dict[str, Any] = facts["python_env"] if isinstance(facts.get("python_env"), dict) else {}
    platform = args.platform
    origin["platform"] = "option" if platform else "machine"
    if platform is None:
        plat = str(pyenv.get("platform") or "")
        platform = next((p for p in PLATFORMS if plat.replace("-", "_").endswith(p.split("_", 1)[1])), None)
        if platform is None:
            platform, origin["platform"] = "linux_x86_64", "default"
    python = args.python_version
    origin["python"] = "option" if python else "machine"
    if python is None:
        m = re.match(r"(3\.\d+)", str(pyenv.get("version") or ""))
        python, origin["python"] = (m.group(1), "machine") if m else ("3.12", "default")
    mem = (host.get("memory") or {}).get("total") if isinstance(host.get("memory"), dict) else None
    if not (isinstance(mem, (int, float)) and 0 < mem < 1 << 50):  # NaN, infinity, absurd sizes: unknown
        mem = None
    ram = args.ram_gib if args.ram_gib is not None else (mem / (1 << 30) if mem else None)
    cores = cpu.get("logical_cpus") if isinstance(cpu.get("logical_cpus"), int) else None
    # this machine's cores cap MAX_JOBS only when its RAM sizes it too (with --ram-gib the plan is for another box)
    cores = cores if cores and 0 < cores < 1 << 20 and args.ram_gib is None else None
    inputs = Inputs(
        targets=tuple(targets),
        driver=driver,
        kernel_module=module,
        platform=platform,
        python=python,
        cpu_flags=cpu_flags,
        cpu_flags_complete=complete,
        vllm=args.vllm,
        extras=tuple(dict.fromkeys(extras)),
        ram_gib=round(ram, 1) if ram else None,
        cores=cores or None,
        origin=origin,
    )
    doc = plan(inputs, load_table())
    gpus = facts.get("gpus")
    if isinstance(gpus, list):
        doc["inputs"]["gpus"] = [g.get("name") for g in gpus if isinstance(g, dict)]
    messages: List[str] = []
    if isinstance(gpus, Unavailable) and not targets:
        messages.append(f"no GPU found here ({gpus.reason}); pass --target sm_XY")
    return Outcome(doc, 0 if doc["plans"] else 1, messages)
