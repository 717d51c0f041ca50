"""The export tooling's commands, added to the CLI through the public command hook, as a plugin's would be.

The command definitions live in :mod:`zoo.exports.cli`, imported here only when the CLI needs its
plugin commands (``zoo --help``, or a command that is not one of the core's).
"""

from zoo import hookimpl


@hookimpl
def register_commands(cli):
    from zoo.exports.cli import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)
