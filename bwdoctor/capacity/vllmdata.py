"""What `bwdoctor plan` knows about vLLM releases: the KV-cache dtypes it models, the tensor-parallel rule,
the per-release batch defaults (bwdoctor/data/vllm_plan.json, each row with its source) and which versions
are known (that file's oldest release up to the newest release in bwdoctor/data/vllm_releases.json)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Optional

from bwdoctor.domain.versions import parse_version, version_key


class PlanInputError(ValueError):
    """A plan argument or model figure that vLLM would refuse or bwdoctor cannot model; the message says why."""


@lru_cache(maxsize=1)
def table() -> dict:
    """The packaged vllm_plan.json."""
    data: dict = json.loads(resources.files("bwdoctor.data").joinpath("vllm_plan.json").read_text("utf-8"))
    return data


@lru_cache(maxsize=1)
def newest_release() -> str:
    """The newest vLLM release bwdoctor's release table holds."""
    raw = json.loads(resources.files("bwdoctor.data").joinpath("vllm_releases.json").read_text("utf-8"))
    versions = [r["version"] for r in raw["releases"]]
    return max(versions, key=version_key)


def check_version(text: Any) -> str:
    """The vLLM version if plan can model it; raises PlanInputError for text that is not a version or a release
    outside the known range."""
    oldest, newest = table()["oldest_release"], newest_release()
    v = parse_version(text)
    if v is None:
        raise PlanInputError(f"--vllm-version {str(text)[:40]!r} is not a version (e.g. {newest})")
    if version_key(v) < version_key(oldest) or version_key(v.base_version) > version_key(newest):
        raise PlanInputError(
            f"--vllm-version {v}: unknown vLLM release; plan models {oldest} to {newest} "
            "(bwdoctor/data/vllm_releases.json)"
        )
    return str(text)


def kv_dtype_bytes(name: Any) -> Optional[int]:
    """Bytes per KV element for --kv-cache-dtype NAME (None: auto, decided by the model); raises PlanInputError
    for a name vLLM does not know or plan does not model."""
    known = {k: v for k, v in table()["kv_cache_dtypes"].items() if isinstance(v, dict)}
    key = str(name).lower() if isinstance(name, str) else None
    if key not in known:
        raise PlanInputError(
            f"--kv-cache-dtype {str(name)[:40]!r} is not a KV-cache dtype plan knows ({', '.join(known)})"
        )
    b = known[key]["bytes"]
    return b if isinstance(b, int) else None


def check_tensor_parallel(tp: int, heads: int, kv_heads: int, mla: bool) -> None:
    """vLLM's rule: heads divide by TP; KV heads divide by TP, or TP by the KV heads (they are replicated)."""
    if heads % tp:
        raise PlanInputError(
            f"--tp {tp}: the model's {heads} attention heads do not divide by {tp}; vLLM refuses it "
            f"('Total number of attention heads ({heads}) must be divisible by tensor parallel size ({tp})')"
        )
    if mla or kv_heads <= 0:
        return
    if tp < kv_heads and kv_heads % tp:
        raise PlanInputError(f"--tp {tp}: the model's {kv_heads} KV heads do not divide by {tp}; vLLM refuses it")
    if tp >= kv_heads and tp % kv_heads:
        raise PlanInputError(
            f"--tp {tp}: {kv_heads} KV heads cannot be replicated evenly over {tp} ranks "
            f"(vLLM replicates them only when TP is a multiple of the KV heads)"
        )


def batch_defaults(gpu_memory_gib: float, vllm_version: str, max_model_len: int) -> tuple[int, int, str]:
    """vllm serve's default (max_num_batched_tokens, max_num_seqs, source) for this release, GPU and length."""
    v = version_key(vllm_version)
    for row in table()["batch_defaults"]:
        if "below" in row and not v < version_key(row["below"]):
            continue
        if "below_release" in row and not v < version_key(row["below_release"]):
            continue
        if "from" in row and not v >= version_key(row["from"]):
            continue
        if "max_model_len_above" in row and not max_model_len > row["max_model_len_above"]:
            continue
        if "gpu_memory_gib_at_least" in row and not gpu_memory_gib >= row["gpu_memory_gib_at_least"]:
            continue
        tokens = row["max_num_batched_tokens"]
        if tokens == "max(max_model_len, 2048)":
            tokens = max(max_model_len, 2048)
        return int(tokens), int(row["max_num_seqs"]), str(row["source"])
    return 2048, 256, "no row matched; vLLM's smallest defaults"
