"""BW401 fact cases, and `bwdoctor symbols` on a real library built here."""

import json
import shutil
import subprocess

import pytest
from conftest import run_cli

from bwdoctor.checks import linking
from bwdoctor.testing import run_check, statuses

FAIL = {
    "extensions": [
        {
            "distribution": "xformers",
            "version": "0.0.35",
            "requires_torch": True,
            "checked": 1,
            "files": [
                {
                    "path": "/sp/xformers/_C.so",
                    "import": "xformers._C",
                    "loads": False,
                    "missing_libraries": [],
                    "missing_versions": [],
                    "undefined": [
                        {
                            "symbol": "torch_c10_cuda_free_error_msg",
                            "demangled": None,
                            "version": None,
                            "required_by": "/sp/xformers/_C.so",
                        }
                    ],
                    "undefined_count": 11,
                    "error": None,
                }
            ],
        },
        {"distribution": "torchvision", "version": "0.24.1", "requires_torch": True, "checked": 2, "files": []},
    ],
    "notes": [],
}


def test_failing_extension_names_the_import_and_cause():
    f = run_check(
        linking.extensions_load, {"extension_links": FAIL, "torch_build": {"version": "2.9.1", "cuda": "12.8"}}
    )
    assert statuses(f) == ["fail", "pass"]
    assert f[0].evidence["import"] == "xformers._C" and f[0].evidence["distribution"] == "xformers"
    assert f[0].kb == "undefined-symbol" and "2.9.1" in f[0].evidence["fix"]


def test_cause_sets_the_article():
    fact = json.loads(json.dumps(FAIL))
    fact["extensions"][0]["files"][0].update(
        undefined=[],
        undefined_count=0,
        missing_libraries=[{"name": "libcuda.so.1", "needed_by": "/sp/xformers/_C.so", "tried": []}],
    )  # the loader's raw result
    f = run_check(linking.extensions_load, {"extension_links": fact, "torch_build": {"$unavailable": "x"}})
    assert f[0].kb == "no-driver-in-container"


def test_nothing_installed():
    f = run_check(
        linking.extensions_load,
        {"extension_links": {"extensions": [], "notes": []}, "torch_build": {"$unavailable": "x"}},
    )
    assert statuses(f) == ["skip"]


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")
def test_symbols_command(tmp_path):
    src = tmp_path / "x.c"
    src.write_text("int gone(void); int f(void){return gone();}\n")
    lib = tmp_path / "libx.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, timeout=60)
    res = run_cli("symbols", str(lib), "--format", "json")
    doc = json.loads(res.stdout)
    assert res.returncode == 1 and doc["schema"] == "bwdoctor.symbols/1"
    assert doc["files"][0]["undefined"][0]["symbol"] == "gone" and doc["files"][0]["cause"] == "undefined-symbol"
    res = run_cli("symbols", str(tmp_path / "nope.so"))
    assert res.returncode == 2 and "not a file" in res.stderr


# what the loader model sees in a file of each cause (the fact holds observations; checks/linkcauses names the cause)
RAW = {
    "torchvision-mismatch": {"undefined": ["_ZN3c104cuda9SetDeviceEi"]},  # in a torchvision/torchaudio file
    "undefined-symbol": {"undefined": ["_ZN3c104cuda9SetDeviceEi"]},
    "no-driver-in-container": {"missing": ["libcuda.so.1"]},
    "missing-library": {},
}


def _file(path, imp, cause, soft=None, missing=()):
    raw = RAW[cause]
    missing = list(missing) or raw.get("missing", [])
    und = [{"symbol": u, "demangled": None, "version": None, "required_by": path} for u in raw.get("undefined", [])]
    return {
        "path": path,
        "import": imp,
        "soft": soft,
        "loads": False,
        "missing_libraries": [{"name": m, "needed_by": path, "tried": []} for m in missing],
        "missing_versions": [],
        "undefined": und,
        "undefined_count": len(und),
        "error": None,
    }


def test_one_finding_per_cause_with_the_import_and_siblings_folded():
    sp = "/sp"
    fact = {
        "torch": "2.9.1",
        "notes": [],
        "extensions": [
            {
                "distribution": "torchaudio",
                "version": "2.8.0",
                "checked": 4,
                "torch_matches": False,
                "built_for": {"torch": "2.8.0", "source": "Requires-Dist torch==2.8.0"},
                "files": [
                    _file(f"{sp}/torchaudio/lib/libtorchaudio.so", "torchaudio", "torchvision-mismatch"),
                    _file(
                        f"{sp}/torio/lib/libtorio_ffmpeg6.so",
                        None,
                        "missing-library",
                        "an optional FFmpeg backend",
                        ["libavutil.so.58"],
                    ),
                    _file(
                        f"{sp}/torchaudio/lib/_torchaudio.so",
                        "torchaudio.lib._torchaudio",
                        "missing-library",
                        missing=["libtorchaudio.so"],
                    ),
                ],
            },
            {
                "distribution": "vllm",
                "version": "0.11.0",
                "checked": 4,
                "torch_matches": False,
                "built_for": {"torch": "2.8.0", "source": "Requires-Dist torch==2.8.0"},
                "files": [
                    _file(
                        f"{sp}/vllm/cumem_allocator.abi3.so",
                        "vllm.cumem_allocator",
                        "no-driver-in-container",
                        missing=["libcuda.so.1"],
                    ),
                    _file(f"{sp}/vllm/_C.abi3.so", "vllm._C", "no-driver-in-container", missing=["libcuda.so.1"]),
                ],
            },
        ],
    }
    f = run_check(
        linking.extensions_load, {"extension_links": fact, "torch_build": {"version": "2.9.1", "cuda": "12.8"}}
    )
    assert statuses(f) == ["fail", "fail", "fail"]
    audio, ffmpeg, vllm = f
    assert audio.evidence["import"] == "torchaudio" and audio.kb == "torchvision-mismatch"
    assert "pip install torchaudio==2.9.1" in audio.message  # _torchaudio.so only lacks its failing sibling
    assert (
        ffmpeg.severity == "warning"
        and "import" not in ffmpeg.evidence
        and ffmpeg.evidence["distribution"] == "torchaudio"
    )
    assert vllm.evidence["import"] == "vllm._C" and vllm.evidence["imports"] == ["vllm._C", "vllm.cumem_allocator"]
    assert vllm.kb == "no-driver-in-container" and "--gpus all" in vllm.evidence["fix"]


def test_pins_flag_a_build_for_another_torch_even_when_it_links():
    fact = {
        "torch": "2.9.1",
        "notes": [],
        "extensions": [
            {
                "distribution": "torchvision",
                "version": "0.23.0",
                "checked": 9,
                "files": [],
                "dist_info": "/sp/tv.dist-info",
                "torch_matches": False,
                "built_for": {"torch": "2.8.0", "source": "Requires-Dist torch (==2.8.0)"},
            },
            {
                "distribution": "xformers",
                "version": "0.0.35",
                "checked": 1,
                "dist_info": "/sp/xf.dist-info",
                "torch_matches": False,
                "built_for": {"torch": "2.10.0", "source": "cpp_lib.json"},
                "files": [_file("/sp/xformers/_C.so", None, "undefined-symbol", "xFormers runs without its kernels")],
            },
            {
                "distribution": "vllm",
                "version": "0.11.0",
                "checked": 1,
                "torch_matches": False,
                "built_for": {"torch": "2.8.0", "source": "Requires-Dist torch==2.8.0"},
                "files": [_file("/sp/vllm/_C.abi3.so", "vllm._C", "undefined-symbol")],
            },
            {
                "distribution": "flash-attn",
                "version": "2.8.3",
                "checked": 1,
                "files": [],
                "torch_matches": True,
                "built_for": {"torch": "2.9", "source": "wheel name"},
            },
        ],
    }
    f = run_check(linking.extensions_load, {"extension_links": fact, "torch_build": {"version": "2.9.1+cu128"}})
    pins = [
        x
        for x in f
        if getattr(x, "evidence", {}).get("built_for") and "import" not in x.evidence and x.severity != "warning"
    ]
    assert [x.evidence["distribution"] for x in pins] == ["torchvision", "xformers"]  # vllm: its import finding says it
    assert statuses(f) == [
        "fail",
        "fail",
        "fail",
        "fail",
        "pass",
    ]  # + xformers' optional load, vllm._C; flash-attn passes
    tv, xf = pins
    assert "pip install torchvision==0.24.1 --index-url https://download.pytorch.org/whl/cu128" in tv.message
    assert tv.kb == "torchvision-mismatch" and "import" not in tv.evidence and tv.evidence["path"] == "/sp/tv.dist-info"
    assert "torch==2.10.0" in xf.evidence["fix"] and xf.kb == "torch-pin-conflict"
    vllm = next(x for x in f if x.evidence.get("import") == "vllm._C")
    assert vllm.evidence["built_for"]["torch"] == "2.8.0" and "torch==2.8.0" in vllm.evidence["fix"]


@pytest.mark.parametrize("torch,want", [("2.9.1", "0.24.1"), ("2.8.0", "0.23.0"), ("2.13.0+cpu", "0.28.0")])
def test_companion_versions(torch, want):
    assert linking.companion_version("torchvision", torch.split("+")[0]) == want
    assert linking.companion_version("torchaudio", torch.split("+")[0]) == torch.split("+")[0]
