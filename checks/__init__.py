"""Built-in checks, one module per family. Ids are stable and never reused."""

BUILTIN = [
    "bwdoctor.checks.driver",
]
