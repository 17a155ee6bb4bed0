"""Extra subcommands: each module has register(subparsers) and run(args) -> exit code."""

COMMANDS = ["bwdoctor.commands.cubins", "bwdoctor.commands.build", "bwdoctor.commands.symbols",
            "bwdoctor.commands.plan", "bwdoctor.commands.fleet"]
