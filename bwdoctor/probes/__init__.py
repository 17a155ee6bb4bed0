"""Built-in probes: the only code that reads the machine. One module per area."""

BUILTIN = [
    "bwdoctor.probes.host",
    "bwdoctor.probes.nvidia",
    "bwdoctor.probes.environment",
    "bwdoctor.probes.pyenv",
    "bwdoctor.probes.pystack",
    "bwdoctor.probes.gpucode",
    "bwdoctor.probes.toolkit",
    "bwdoctor.probes.live",
    "bwdoctor.probes.kernelcmd",
    "bwdoctor.probes.cpuisa",
    "bwdoctor.probes.build",
    "bwdoctor.probes.libcuda",
    "bwdoctor.probes.links",
    "bwdoctor.probes.net",
    "bwdoctor.probes.serve",
    "bwdoctor.probes.artifacts",
    "bwdoctor.probes.servehost",
    "bwdoctor.probes.kernelfams",
]
