"""Package data generated from released upstream sources (see tools/gen_vllm_facts.py)."""
