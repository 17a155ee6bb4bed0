"""vLLM serve-config linter: readers for where serve configs live, release facts, validation rules."""
