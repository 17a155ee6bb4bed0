"""The commands. Each module has register(subparsers, epilog) and, per command, run(args) -> Outcome: a view
that asks the engine (or a named probe) for facts and returns ONE document; the CLI renders it."""

COMMANDS = [
    "bwdoctor.commands.check",
    "bwdoctor.commands.facts",
    "bwdoctor.commands.explain",
    "bwdoctor.commands.cubins",
    "bwdoctor.commands.kernels",
    "bwdoctor.commands.build",
    "bwdoctor.commands.symbols",
    "bwdoctor.commands.plan",
    "bwdoctor.commands.fleet",
    "bwdoctor.commands.recommend",
]
