"""Capacity preflight: will a model fit on the GPUs, and how many KV-cache tokens will vLLM get."""
