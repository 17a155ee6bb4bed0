"""Probe of the build artifacts a command names (`cubins`, `verify-build`): files, directories, wheels and
installed distributions, read for their GPU code. One reader for all of them: ELF files by magic, fatbin
headers through bwdoctor.elf.fatbin, a distribution's files from its RECORD (the `distributions` fact)."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional

if TYPE_CHECKING:
    import zipfile

from .. import fileio
from ..elf.distfiles import is_elf, iter_elf_files
from ..elf.fatbin import FatbinScan, elf_ident_problem, scan_file
from ..fileio import mib
from ..model import Unavailable
from ..registry import probe
from .pyenv import canonical, installed_elf_files

SHARED_RE = re.compile(r"\.so(\.\d+)*$")


# Bounds on what a wheel may make bwdoctor write: one member at a time, in a private temp dir always removed.
MEMBER_LIMIT = 4 << 30  # the largest real CUDA library in a wheel (libtorch_cuda.so) is about 2 GiB
TOTAL_LIMIT = 16 << 30  # all members of one wheel together (torch's are about 4 GiB)
RATIO_LIMIT = 100  # real libraries deflate 2-10:1; a member far above is padding or a zip bomb
RATIO_FLOOR = 16 << 20  # a small member is extracted whatever its ratio
SPACE_MARGIN = 256 << 20  # free space left in the temp dir after extracting a member


def wheel_errors() -> tuple:
    """What a damaged or hostile zip raises (bad CRC, bad header, unknown compression, cut short). zipfile, zlib
    and lzma are imported here, when a wheel is read, not at every start of bwdoctor."""
    import lzma
    import zipfile
    import zlib

    return (
        OSError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        lzma.LZMAError,
        RuntimeError,
        ValueError,
        EOFError,
        NotImplementedError,
    )


def __getattr__(name: str) -> Any:
    """WHEEL_ERRORS and the modules only wheel reading needs, imported on first use."""
    if name == "WHEEL_ERRORS":
        return wheel_errors()
    if name in ("tempfile", "zipfile", "shutil"):
        import importlib

        return importlib.import_module(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Scan = Callable[[str], Dict[str, Any]]


def _scanner(ctx: Any) -> Scan:
    """scan_file, or with ctx.options["units"] (True or "names") scan_file plus the file's units (kernels)."""
    want = ctx.options.get("units")
    if not want:
        return lambda path: scan_file(path)  # looked up at call time

    def scan(path: str) -> Dict[str, Any]:
        from ..elf.cubin import read_units

        item = scan_file(path)
        item["units"] = read_units(path, names=want == "names")["units"]
        return item

    return scan


def _skipped(member: str, why: str) -> Dict[str, Any]:
    return FatbinScan(path=member, error=f"not extracted: {why}").to_json()


def _member_problem(info: zipfile.ZipInfo, extracted: int, tmp: str) -> Optional[str]:
    """Why a member must not be extracted (size, ratio, total, free space), or None."""
    size, packed = info.file_size, max(1, info.compress_size)
    if size > MEMBER_LIMIT:
        return f"it declares {mib(size)}, over the {mib(MEMBER_LIMIT)} limit per member"
    if size > RATIO_FLOOR and size / packed > RATIO_LIMIT:
        return f"{mib(size)} packed into {mib(packed)} ({size // packed}:1) is padding or a zip bomb, not a library"
    if extracted + size > TOTAL_LIMIT:
        return f"the wheel's members would pass {mib(TOTAL_LIMIT)} extracted in all"
    import shutil

    try:
        free = shutil.disk_usage(tmp).free
    except OSError:
        free = None
    if free is not None and size + SPACE_MARGIN > free:
        return f"{mib(size)} does not fit in the free space of {os.path.dirname(tmp)} ({mib(free)} free)"
    return None


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, head: bytes, src: Any, dest: str) -> int:
    """Copy one member (its first bytes already read) to dest, never more than it declares; bytes written."""
    written = 0
    with open(dest, "xb") as out:  # a fresh file in a private directory
        out.write(head)
        written += len(head)
        while written < info.file_size:
            block = src.read(min(1 << 20, info.file_size - written))
            if not block:
                break
            out.write(block)
            written += len(block)
    return written


def _wheel(path: Path, progress: Optional[Callable[[str], None]] = None, scan: Optional[Scan] = None) -> Dict[str, Any]:
    """Each shared object of a wheel, read member by member: the ELF magic is read from the zip stream first
    (anything else is never extracted); an ELF member is copied into a private temp dir (removed at once and
    always), within MEMBER_LIMIT, RATIO_LIMIT, TOTAL_LIMIT and the free space; a member over them is listed with
    the reason it was skipped."""
    import zipfile

    parts = path.name.split("-")
    files = []
    extracted = 0
    with fileio.open_file(path) as fh, zipfile.ZipFile(fh) as zf, _private_dir() as tmp:
        members = [i for i in zf.infolist() if i.filename and not i.is_dir() and SHARED_RE.search(i.filename)]
        for n, info in enumerate(members, 1):
            if progress:
                progress(f"{path.name}: {n}/{len(members)} {os.path.basename(info.filename)}")
            with zf.open(info) as src:
                head = src.read(64)
                problem = elf_ident_problem(head, info.file_size)
                if problem:  # not an ELF (or not one that can hold fatbins): reported, never extracted
                    files.append(FatbinScan(path=info.filename, error=problem).to_json())
                    continue
                why = _member_problem(info, extracted, tmp)
                if why:
                    files.append(_skipped(info.filename, why))
                    continue
                dest = os.path.join(tmp, f"member-{n}.so")
                try:
                    extracted += _extract(zf, info, head, src, dest)
                    item = (scan or scan_file)(dest)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(dest)
            item["path"] = info.filename
            files.append(item)
    return {
        "kind": "wheel",
        "name": canonical(parts[0]),
        "version": parts[1] if len(parts) >= 3 else "",
        "files": files,
    }


@contextlib.contextmanager
def _private_dir() -> Iterator[str]:
    """A temp directory only this user can read, removed on exit, and at interpreter exit should the probe's
    thread be abandoned on its budget."""
    import atexit
    import functools
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="bwdoctor-wheel-")  # mode 0700
    remove = functools.partial(shutil.rmtree, tmp, ignore_errors=True)
    atexit.register(remove)
    try:
        yield tmp
    finally:
        remove()
        atexit.unregister(remove)


def _distribution(
    ctx: Any, arg: str, distributions: Any, progress: Optional[Callable[[str], None]] = None
) -> Optional[Dict[str, Any]]:
    """The ELF files an installed distribution owns (its RECORD), or None when it is not installed."""
    if isinstance(distributions, Unavailable) or not isinstance(distributions, list):
        return None
    d = next((d for d in distributions if isinstance(d, dict) and d.get("name") == canonical(arg)), None)
    if d is None:
        return None
    paths, err = installed_elf_files(ctx, d)
    out = {
        "kind": "distribution",
        "name": d["name"],
        "version": d.get("version", ""),
        "files": _scan_all(paths, progress, arg, _scanner(ctx)),
    }
    if err:
        out["problem"] = f"{arg}: {err}"
    return out


def _scan_all(
    paths: Any, progress: Optional[Callable[[str], None]], what: str, scan: Optional[Scan] = None
) -> List[Dict[str, Any]]:
    out = []
    for n, f in enumerate(paths, 1):
        if progress:
            progress(f"{what}: {n} {os.path.basename(f)}")
        out.append((scan or scan_file)(str(f)))
    return out


def _unusable(host: str) -> Optional[str]:
    """Why a named path that exists is neither a directory nor a regular file (FIFO, device, socket, symlink
    loop, dangling link), or None."""
    try:
        mode = os.stat(host).st_mode
    except OSError as exc:
        return fileio.describe(exc)
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return None
    return f"is {fileio.kind_of(mode)}, not a file, a wheel or a directory"


def read_artifact(
    ctx: Any, arg: str, distributions: Any, where: str, progress: Optional[Callable[[str], None]] = None
) -> Dict[str, Any]:
    """One named input: {"arg", "kind", "name", "version", "files": [scan items], "problem"?}.

    Under --root an absolute path names a file of the tree (as `symbols` reads it) and files are reported by
    the paths the inspected machine gives them."""
    out = _read_artifact(ctx, arg, distributions, where, progress)
    if ctx.in_tree and out["kind"] != "wheel":
        out["files"] = [dict(f, path=ctx.machine_path(f["path"])) for f in out["files"]]
    return out


def _read_artifact(
    ctx: Any, arg: str, distributions: Any, where: str, progress: Optional[Callable[[str], None]] = None
) -> Dict[str, Any]:
    host = str(ctx.host_path(arg)) if ctx.in_tree and os.path.isabs(arg) else arg
    p = Path(host)
    out: Dict[str, Any]
    if p.is_dir():
        files = _scan_all(iter_elf_files(p), progress, arg, _scanner(ctx))
        out = {"kind": "directory", "name": p.name, "version": "", "files": files}
    elif p.is_file() and p.suffix == ".whl":
        try:
            out = _wheel(p, progress, _scanner(ctx))
        except wheel_errors() as exc:
            why = (
                fileio.describe(exc)
                if isinstance(exc, OSError)
                else f"not a readable wheel ({exc or type(exc).__name__})"
            )
            out = {"kind": "wheel", "name": p.name, "version": "", "files": [], "problem": f"{arg}: {why}"}
    elif os.path.lexists(host) and _unusable(host):
        out = {"kind": "unusable", "name": p.name, "version": "", "files": [], "problem": f"{arg}: {_unusable(host)}"}
    elif os.path.lexists(host):
        out = {
            "kind": "file" if is_elf(host) else "not-elf",
            "name": p.name.split(".")[0],
            "version": "",
            "files": [_scanner(ctx)(host)],
        }
    elif os.sep in arg or arg.endswith(".so") or ".so." in arg:
        out = {
            "kind": "missing",
            "name": arg,
            "version": "",
            "files": [],
            "problem": f"{arg}: no such file or directory",
        }
    else:
        out = _distribution(ctx, arg, distributions, progress) or {
            "kind": "missing",
            "name": arg,
            "version": "",
            "files": [],
            "problem": f"{arg}: no such file, directory or installed distribution in {where}",
        }
    out["arg"] = arg
    return out


@probe("named_artifacts", budget=900.0)
def named_artifacts(ctx: Any, python_env: Any, distributions: Any) -> List[Dict[str, Any]]:
    """GPU code of the files, directories, wheels and installed distributions a command names."""
    where = (
        f"the environment of {python_env.get('executable')}"
        if isinstance(python_env, dict)
        else f"no Python environment ({python_env.reason})"
        if isinstance(python_env, Unavailable)
        else "the inspected environment"
    )
    from ..progress import Progress

    with Progress(bool(ctx.options.get("progress")), "reading GPU code") as progress:
        return [read_artifact(ctx, str(a), distributions, where, progress) for a in ctx.options.get("artifacts") or []]
