"""CPU sets and NUMA nodes: the kernel's cpulist text, and the CPU set a serve launch pins itself to
(numactl, taskset, docker --cpuset-cpus, compose `cpuset:`, systemd CPUAffinity=). Pure functions."""

from __future__ import annotations

import re
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

MAX_CPU = 1 << 16  # the kernel's NR_CPUS is at most 8192; anything past this is not a CPU number


def parse_cpulist(text: str) -> FrozenSet[int]:
    """CPUs of a cpulist ("0-3,8,10-11", the format of /sys/.../cpulist and Cpus_allowed_list); "" is empty.
    Raises ValueError on anything else (also on absurd numbers)."""
    out: set[int] = set()
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d{1,6})(?:-(\d{1,6}))?(?::(\d{1,6}))?", part)
        if not m:
            raise ValueError(f"not a CPU list: {part!r}")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        step = int(m.group(3)) if m.group(3) else 1
        if b < a or b >= MAX_CPU or step < 1:
            raise ValueError(f"not a CPU range: {part!r}")
        out.update(range(a, b + 1, step))
    return frozenset(out)


def parse_mask(text: str) -> FrozenSet[int]:
    """CPUs of a hex affinity mask ("ff", "0x3", "ffffffff,ffffffff" as /proc prints it). Raises ValueError."""
    digits = text.strip().lower().removeprefix("0x").replace(",", "")
    if not re.fullmatch(r"[0-9a-f]{1,4096}", digits):
        raise ValueError(f"not a CPU mask: {text!r}")
    n = int(digits, 16)
    return frozenset(i for i in range(n.bit_length()) if n >> i & 1)


def format_cpus(cpus: Iterable[int]) -> str:
    """The cpulist text of a CPU set ({0,1,2,5} -> "0-2,5")."""
    out: List[str] = []
    run: List[int] = []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def _opt(words: List[str], i: int, names: Tuple[str, ...]) -> Optional[Tuple[str, int]]:
    """(value, index of the next word) when words[i] is one of `names` given as --x=V, --x V or -xV."""
    w = words[i]
    for n in names:
        if w == n and i + 1 < len(words):
            return words[i + 1], i + 2
        if n.startswith("--") and w.startswith(n + "="):
            return w[len(n) + 1 :], i + 1
        if not n.startswith("--") and w.startswith(n) and len(w) > len(n):
            return w[len(n) :], i + 1
    return None


def nodes_of_spec(spec: str, nodes: Dict[int, FrozenSet[int]]) -> FrozenSet[int]:
    """CPUs of a numactl node spec ("0", "0,1", "0-1", "all")."""
    if spec.strip() == "all":
        ids: Iterable[int] = nodes
    else:
        ids = parse_cpulist(spec.lstrip("+!"))
    return frozenset(c for n in ids for c in nodes.get(n, frozenset()))


def pinned_cpus(words: List[str], nodes: Dict[int, FrozenSet[int]]) -> Optional[Tuple[FrozenSet[int], int, str]]:
    """(CPUs, index of the word that says so, how) of the words before a launcher: numactl --cpunodebind /
    --physcpubind, taskset -c LIST / MASK, docker/podman --cpuset-cpus. None when they do not pin CPUs.
    Raises ValueError on a list that cannot be read."""
    found = None
    i = 0
    while i < len(words):
        base = words[i].rsplit("/", 1)[-1]
        if base == "numactl":
            j = i + 1
            while j < len(words) and words[j].startswith("-"):
                got = _opt(words, j, ("--cpunodebind", "-N"))
                if got:
                    found = (nodes_of_spec(got[0], nodes), j, f"numactl --cpunodebind={got[0]}")
                    j = got[1]
                    continue
                got = _opt(words, j, ("--physcpubind", "-C"))
                if got:
                    cpus = frozenset(c for n in nodes.values() for c in n) if got[0] == "all" else parse_cpulist(got[0])
                    found = (cpus, j, f"numactl --physcpubind={got[0]}")
                    j = got[1]
                    continue
                has_value = words[j] in ("-m", "--membind", "-p", "--preferred", "-i", "--interleave")
                j += 2 if has_value else 1
            i = j
            continue
        if base == "taskset":
            j = i + 1
            as_list = False
            while j < len(words) and words[j].startswith("-"):
                if words[j] in ("-c", "--cpu-list") or re.fullmatch(r"-[ap]*c[ap]*", words[j]):
                    as_list = True
                j += 1
            if j < len(words):
                spec = words[j]
                cpus = parse_cpulist(spec) if as_list else parse_mask(spec)
                found = (cpus, j, f"taskset {'-c ' if as_list else ''}{spec}")
            i = j + 1
            continue
        if base in ("docker", "podman"):
            for j in range(i + 1, len(words)):
                got = _opt(words, j, ("--cpuset-cpus",))
                if got:
                    found = (parse_cpulist(got[0]), j, f"--cpuset-cpus {got[0]}")
                    break
        i += 1
    return found


def affinity_setting(name: str, value: str) -> Optional[FrozenSet[int]]:
    """CPUs of a launcher setting: compose `cpuset: "0-7"`, systemd CPUAffinity=0-7 / "0 1 2". None for a setting
    that does not pin CPUs (NUMAPolicy=, NUMAMask= place memory only). Raises ValueError on unreadable text."""
    if name == "cpuset":
        return parse_cpulist(value)
    if name == "CPUAffinity":
        return parse_cpulist(value.replace(" ", ","))
    return None


def node_of(cpus: FrozenSet[int], nodes: Dict[int, FrozenSet[int]]) -> List[int]:
    """The NUMA nodes a CPU set touches."""
    return sorted(n for n, c in nodes.items() if cpus & c)
