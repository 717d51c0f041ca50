"""The export tooling's commands, added to the CLI through the public command hook, as a plugin's would be.

Each room keeps its own commands beside the code they run: the export side (``export``, ``check-plugin``,
``bench``), the bundle (``info``), the deployment side (``verify``, ``predict``, ``runtimes``), the variants
(``variants``) and the card (``report``). They are imported here only when the CLI needs its plugin commands
(``zoo --help``, or a command that is not one of the core's): ``zoo list`` never pays for them.
"""

from zoo import hookimpl


@hookimpl
def register_commands(cli):
    # Deferred: this module is a default plugin, imported for every command; the commands' modules are not.
    from zoo.exports.bundle import commands as bundle
    from zoo.exports.card import commands as card
    from zoo.exports.deploy import commands as deploy
    from zoo.exports.export import commands as export
    from zoo.exports.serve import commands as serve
    from zoo.exports.variants import commands as variants

    for command in (export.export, deploy.verify, deploy.predict, deploy.runtimes, export.bench, export.check_plugin,
                    variants.variants, card.report, bundle.info, serve.serve):
        cli.add_command(command)
