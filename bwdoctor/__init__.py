"""bwdoctor: a preflight doctor for serving LLMs with vLLM on NVIDIA GPUs, Blackwell first."""

__version__ = "0.1.0"
