"""Built-in checks, one module per family. Ids are stable and never reused."""

BUILTIN = [
    "bwdoctor.checks.host",
    "bwdoctor.checks.driver",
    "bwdoctor.checks.gpucode",
    "bwdoctor.checks.kernels",
    "bwdoctor.checks.linking",
    "bwdoctor.checks.stack",
    "bwdoctor.checks.packages",
    "bwdoctor.checks.coinstall",
    "bwdoctor.checks.multigpu",
    "bwdoctor.checks.live",
    "bwdoctor.checks.build",
    "bwdoctor.checks.serve",
    "bwdoctor.checks.fleet",
    "bwdoctor.checks.startup",
]
