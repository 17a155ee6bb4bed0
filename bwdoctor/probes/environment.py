"""The environment variables that change how CUDA, NCCL, torch, Triton and vLLM behave (secrets redacted)."""

from __future__ import annotations

from ..redact import redact_env
from ..registry import probe

PREFIXES = (
    "CUDA_",
    "NCCL_",
    "VLLM_",
    "TORCH_",
    "PYTORCH_",
    "TRITON_",
    "NVIDIA_",
    "HF_",
    "HUGGING_FACE_",
    "TRANSFORMERS_",
    "FLASHINFER_",
    "XFORMERS_",
    "BNB_",
    "CMAKE_CUDA",
    "NVCC_",
    "GLOO_",
    "RAY_",
)
NAMES = (
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "PATH",
    "CUDA_HOME",
    "CUDA_PATH",
    "MAX_JOBS",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYTHONPATH",
    "TMPDIR",
    "CC",
    "CXX",
    "OMP_NUM_THREADS",
)


def relevant(env) -> dict:
    """The subset of an environment mapping bwdoctor cares about."""
    return {k: v for k, v in env.items() if k in NAMES or k.startswith(PREFIXES)}


@probe("environment", budget=1.0)
def environment(ctx):
    """Relevant environment variables (CUDA_*, NCCL_*, VLLM_*, TORCH_*, PATH...), secrets redacted."""
    return dict(sorted(redact_env(relevant(ctx.env)).items()))
