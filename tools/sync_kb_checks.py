#!/usr/bin/env python3
"""Rewrite the `checks = [...]` line of every KB article from the registered checks' kb slugs."""

import glob
import os
import re

from bwdoctor import registry


def main() -> None:
    reg = registry.load(no_plugins=True)
    by = {}
    for c in reg.checks.values():
        by.setdefault(c.kb, []).append(c.id)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kb")
    for path in sorted(glob.glob(os.path.join(root, "*.md"))):
        text = open(path, encoding="utf-8").read()
        m = re.search(r'^slug = "([^"]+)"', text, re.M)
        if not m:
            continue
        ids = sorted(by.get(m.group(1), []))
        new = re.sub(
            r"^checks = \[.*\]$", "checks = [" + ", ".join(f'"{i}"' for i in ids) + "]", text, count=1, flags=re.M
        )
        if new != text:
            open(path, "w", encoding="utf-8").write(new)
            print(f"{os.path.basename(path)}: {ids}")


if __name__ == "__main__":
    main()
