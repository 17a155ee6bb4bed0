"""Forward-compat libcuda detection on --root trees whose ld.so.cache the real ldconfig built."""

import shutil
import subprocess
from pathlib import Path

import pytest
from hosttrees import H100, OPEN_580, RTX5090, pci, write_tree

from bwdoctor.checks import driver as d
from bwdoctor.context import Context
from bwdoctor.testing import run_check, statuses

pytestmark = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("ldconfig")), reason="needs gcc and ldconfig")


def compat_tree(root: Path, gpu: dict, compat_version="570.124.06", compat=True) -> Path:
    libdir = "/usr/local/cuda-12.8/compat" if compat else "/usr/lib/x86_64-linux-gnu"
    real = root / libdir.lstrip("/") / f"libcuda.so.{compat_version}"
    real.parent.mkdir(parents=True, exist_ok=True)
    src = root / "libcuda.c"
    src.write_text("int cuInit(unsigned int f){return (int)f;}\n")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(real), str(src)], check=True, timeout=60
    )
    write_tree(
        root,
        {
            "etc/ld.so.conf": "include /etc/ld.so.conf.d/*.conf\n",
            "etc/ld.so.conf.d/cuda-compat.conf" if compat else "etc/ld.so.conf.d/x86_64-linux-gnu.conf": libdir + "\n",
            "proc/driver/nvidia/version": OPEN_580,
            **pci("0000:01:00.0", gpu),
        },
    )
    subprocess.run(["ldconfig", "-r", str(root)], check=True, timeout=60)  # writes root/etc/ld.so.cache
    return root


def facts_for(root):
    from bwdoctor import engine, registry

    reg = registry.load(no_plugins=True)
    facts, _ = engine.gather(reg, Context(root=root, env={}), ["libcuda", "nvidia_driver", "gpus"])
    return facts


def test_compat_libcuda_on_rtx5090_is_error_804(tmp_path):
    facts = facts_for(compat_tree(tmp_path, RTX5090))
    assert facts["libcuda"]["chosen"]["compat"] and facts["libcuda"]["chosen"]["version"] == "570.124.06"
    assert facts["libcuda"]["chosen"]["via"] == "ld.so.cache"
    assert facts["libcuda"]["compat_confs"][0]["dirs"] == ["/usr/local/cuda-12.8/compat"]
    f = run_check(d.libcuda_matches_driver, facts)
    assert statuses(f) == ["fail"] and "804" in f[0].message


def test_older_compat_on_datacenter_gpu_is_error_803(tmp_path):
    f = run_check(d.libcuda_matches_driver, facts_for(compat_tree(tmp_path, H100)))
    assert statuses(f) == ["fail"] and "803" in f[0].message


def test_host_libcuda_of_the_running_driver_passes(tmp_path):
    facts = facts_for(compat_tree(tmp_path, RTX5090, compat_version="580.159.04", compat=False))
    assert not facts["libcuda"]["chosen"]["compat"]
    assert statuses(run_check(d.libcuda_matches_driver, facts)) == ["pass"]


def test_stale_user_space_after_upgrade(tmp_path):
    facts = facts_for(compat_tree(tmp_path, RTX5090, compat_version="570.124.06", compat=False))
    f = run_check(d.libcuda_matches_driver, facts)
    assert statuses(f) == ["fail"] and "Driver/library version mismatch" in f[0].message
    assert f[0].kb == "driver-library-mismatch"  # the article about exactly this, not forward compatibility
