"""record_drift finds local patches without hashing every file on every run: sizes first, a hash only for a file
changed after its RECORD was written, and that hash cached by the file's identity."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path

from bwdoctor import cache
from bwdoctor.context import Context
from bwdoctor.probes import pystack


def make_dist(base: Path, files: dict) -> dict:
    site = base / "site"
    di = site / "vllm-0.11.0.dist-info"
    di.mkdir(parents=True)
    rows = []
    for rel, body in files.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        rows.append(f"{rel},sha256={digest},{len(body)}")
    rows.append("vllm-0.11.0.dist-info/RECORD,,")
    (di / "RECORD").write_text("\n".join(rows) + "\n")
    old = time.time() - 3600  # installed an hour ago: every file and the RECORD
    for p in [*(site / rel for rel in files), di / "RECORD"]:
        os.utime(p, (old, old))
    return {"name": "vllm", "version": "0.11.0", "location": str(site), "dist_info": str(di)}


def _edit_one_byte(path: Path, when: float) -> None:
    body = bytearray(path.read_bytes())
    body[0] ^= 0x01  # same size, one byte different
    path.write_bytes(bytes(body))
    os.utime(path, (when, when))


def test_one_byte_edit_of_the_same_size_is_found_and_its_hash_cached(tmp_path, cache_dir, monkeypatch):
    dist = make_dist(tmp_path, {"vllm/a.py": b"x = 1\n", "vllm/b.py": b"y = 2\n", "vllm/_C.so": b"\x7fELF" + b"0" * 60})
    site = Path(dist["location"])
    _edit_one_byte(site / "vllm/b.py", time.time() - 60)  # patched after the install, a minute ago
    hashed = []
    real = hashlib.new

    def counting(name, *a, **kw):
        hashed.append(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(hashlib, "new", counting)  # the module pystack imports where it hashes
    first = pystack.record_drift_for(dist, ctx=Context())
    assert first["modified"] == ["vllm/b.py"] and first["missing"] == [] and first["checked"] == 3
    assert hashed == ["sha256"]  # only the file newer than its RECORD was hashed
    cache.finish()
    assert (cache_dir / "digest.json").is_file()
    hashed.clear()
    cache._stores.clear()  # the next run reads the cache from disk
    second = pystack.record_drift_for(dist, ctx=Context())
    assert second == first and hashed == []  # the second run reads the digest from the cache

    # edited again, same size, back to the recorded bytes: a new identity (mtime), so hashed again: clean
    body = bytearray((site / "vllm/b.py").read_bytes())
    body[0] ^= 0x01
    (site / "vllm/b.py").write_bytes(bytes(body))
    os.utime(site / "vllm/b.py", (time.time() - 30, time.time() - 30))
    third = pystack.record_drift_for(dist, ctx=Context())
    assert third["modified"] == [] and hashed == ["sha256"]


def test_same_results_without_the_cache(tmp_path, cache_dir):
    dist = make_dist(tmp_path, {"vllm/a.py": b"x = 1\n", "vllm/b.py": b"y = 2\n"})
    _edit_one_byte(Path(dist["location"]) / "vllm/a.py", time.time() - 60)
    cold = pystack.record_drift_for(dist, ctx=Context())
    warm = pystack.record_drift_for(dist, ctx=Context())
    cache.disable()
    try:
        off = pystack.record_drift_for(dist, ctx=Context())
    finally:
        cache.enable()
    assert cold == warm == off and cold["modified"] == ["vllm/a.py"]


def test_a_planted_digest_for_another_file_is_not_trusted(tmp_path, cache_dir):
    """A cache entry is keyed by the file's identity: an entry written for one file never answers for another,
    and an entry whose content names another key is ignored."""
    dist = make_dist(tmp_path, {"vllm/a.py": b"x = 1\n"})
    a = Path(dist["location"]) / "vllm/a.py"
    _edit_one_byte(a, time.time() - 60)
    pystack.record_drift_for(dist, ctx=Context())
    cache.finish()
    pack = cache_dir / "digest.json"
    doc = json.loads(pack.read_text())
    ((digest_id, (key, _value, when)),) = doc["entries"].items()
    recorded = base64.urlsafe_b64encode(hashlib.sha256(b"x = 1\n").digest()).rstrip(b"=").decode()
    # the recorded (clean) digest planted under this file's slot with another file's key, and under another slot
    # with this file's key but a changed identity: neither may hide the edit
    other_key = [key[0], key[1] + 1, *key[2:]]
    doc["entries"] = {digest_id: [other_key, recorded, when], "0" * 32: [key, recorded, when]}
    pack.write_text(json.dumps(doc))
    os.chmod(pack, 0o600)
    cache._stores.clear()
    assert pystack.record_drift_for(dist, ctx=Context())["modified"] == ["vllm/a.py"]


def test_file_changed_just_now_is_not_cached(tmp_path, cache_dir):
    dist = make_dist(tmp_path, {"vllm/a.py": b"x = 1\n"})
    a = Path(dist["location"]) / "vllm/a.py"
    _edit_one_byte(a, time.time() + 30)  # an mtime that does not yet tell same-size writes apart
    assert pystack.record_drift_for(dist, ctx=Context())["modified"] == ["vllm/a.py"]
    cache.finish()
    assert not (cache_dir / "digest.json").exists()
