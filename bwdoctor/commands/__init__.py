"""Subcommand modules, each with register(subparsers) and run(args)."""

COMMANDS = ["bwdoctor.commands.plan"]
