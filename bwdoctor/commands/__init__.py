"""The commands. Each module has register(subparsers, epilog) and, per command, run(args) -> Outcome: a view
that asks the engine (or a named probe) for facts and returns ONE document; the CLI renders it."""

# which module registers each command name: `bwdoctor check ...` imports and registers only its own module
# (tests/test_cli_parser.py checks this table against the full registration)
COMMAND_MODULES = {
    "check": "bwdoctor.commands.check",
    "prebuild": "bwdoctor.commands.check",
    "facts": "bwdoctor.commands.facts",
    "list": "bwdoctor.commands.facts",
    "explain": "bwdoctor.commands.explain",
    "cubins": "bwdoctor.commands.cubins",
    "kernels": "bwdoctor.commands.kernels",
    "verify-build": "bwdoctor.commands.build",
    "symbols": "bwdoctor.commands.symbols",
    "plan": "bwdoctor.commands.plan",
    "fleet": "bwdoctor.commands.fleet",
    "recommend": "bwdoctor.commands.recommend",
}
COMMANDS = list(dict.fromkeys(COMMAND_MODULES.values()))  # every command module, in registration order
