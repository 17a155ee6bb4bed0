"""Errors a command raises for the CLI to turn into a message and an exit code."""

from __future__ import annotations


class UsageError(Exception):
    """A named input cannot be used (bad option, missing file, unknown check): message and exit 2."""
