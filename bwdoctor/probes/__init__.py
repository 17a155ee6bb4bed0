"""Built-in probes: the only code that reads the machine. One module per area."""

BUILTIN = [
    "bwdoctor.probes.host",
    "bwdoctor.probes.nvidia",
    "bwdoctor.probes.environment",
    "bwdoctor.probes.pyenv",
]
