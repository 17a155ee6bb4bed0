"""Find ELF files: in directories (by magic), and among the files an installed distribution owns."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

from .. import fileio, lazyre

ELF_MAGIC = b"\x7fELF"
MIN_ELF_SIZE = 64
RECORD_LIMIT = 64 * 1024 * 1024  # the RECORD of the largest wheels is a few MB
# Never ELF, and numerous in site-packages: skip them without opening them.
TEXT_SUFFIXES = frozenset(
    {
        ".py",
        ".pyc",
        ".pyi",
        ".h",
        ".hpp",
        ".cuh",
        ".cu",
        ".c",
        ".cc",
        ".cpp",
        ".txt",
        ".md",
        ".json",
        ".yaml",
        ".yml",
        ".toml",
        ".cfg",
        ".ini",
        ".html",
        ".js",
        ".css",
        ".csv",
        ".rst",
        ".typed",
        ".pxd",
        ".pyx",
        ".cmake",
        ".png",
        ".jpg",
        ".svg",
        ".ipynb",
        ".jinja",
        ".proto",
        ".inc",
        ".def",
    }
)


def is_elf(path) -> bool:
    """True when the file starts with the ELF magic (False for anything unreadable)."""
    try:
        with fileio.open_file(path) as fh:
            return fh.read(4) == ELF_MAGIC
    except OSError:
        return False


def _worth_opening(path: str) -> bool:
    if os.path.splitext(path)[1].lower() in TEXT_SUFFIXES:
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    import stat

    return stat.S_ISREG(st.st_mode) and st.st_size >= MIN_ELF_SIZE


def iter_elf_files(root) -> Iterator[str]:
    """Every ELF file under a directory, in a stable order (symlinked directories not followed)."""
    for dirpath, dirnames, filenames in os.walk(root, onerror=None):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if _worth_opening(path) and is_elf(path):
                yield path


def parse_record(text: str) -> List[str]:
    """Relative paths listed in a wheel RECORD file (first CSV column)."""
    out = []
    for row in csv.reader(io.StringIO(text)):
        if row and row[0]:
            out.append(row[0])
    return out


SHARED_RE = lazyre.compile(r"\.so(\.\d+)*$")


def record_elf_files(dist_info, location=None, shared_only: bool = False) -> Tuple[List[str], Optional[str]]:
    """(ELF files a distribution installed, per its RECORD; error text or None).

    shared_only: consider only names like x.so / x.so.12 (where device code lives), so that a RECORD
    of 15,000 entries costs a name test per entry instead of a stat."""
    dist_info = Path(dist_info)
    base = Path(location) if location else dist_info.parent
    record = dist_info / "RECORD"
    try:
        text = fileio.read_bytes(record, RECORD_LIMIT).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return [], f"{record} does not exist (installed without a RECORD)"
    except OSError as exc:
        return [], f"{record} could not be read ({fileio.describe(exc)}); its files are not inspected"
    files = []
    for rel in parse_record(text):
        if os.path.splitext(rel)[1].lower() in TEXT_SUFFIXES or rel.endswith("/"):
            continue
        if shared_only and not SHARED_RE.search(rel):
            continue
        path = os.path.normpath(os.path.join(base, rel))
        if _worth_opening(path) and is_elf(path):
            files.append(path)
    return sorted(set(files)), None


def elf_files_of(paths: Sequence[str]) -> List[str]:
    """The ELF files among a list of paths (text suffixes skipped without opening)."""
    return sorted({p for p in paths if _worth_opening(p) and is_elf(p)})
