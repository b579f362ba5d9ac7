"""`realize ...`: the appliance's command line. Each subcommand lives with its app."""

import sys

from django.core.management.base import BaseCommand, CommandParser

from areas import cli as areas_cli
from fusemount import mount as mount_cli
from peers import cli as peers_cli
from realize_site import peerd
from realize_site import up as up_cli
from realize_site.lib import one_line


class Command(BaseCommand):
    help = "Run the Realize appliance and manage its household and areas."
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        parser = CommandParser(
            prog="realize",
            description=self.help,
            called_from_command_line=self._called_from_command_line,
        )
        parser.set_defaults(
            verbosity=1,
            settings=None,
            pythonpath=None,
            traceback=False,
            no_color=False,
            force_color=False,
            skip_checks=True,
        )
        self.add_arguments(parser)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
        peers_cli.register(commands)
        areas_cli.register(commands)
        peerd.register(commands)
        mount_cli.register(commands)
        up_cli.register(commands)
        # `realize status`: the household's state (peers), then the areas'.
        commands.choices["status"].set_defaults(run=areas_cli.run_status)

    def handle(self, *args, **options) -> None:
        try:
            options["run"](options, self.stdout)
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception as exc:
            message = one_line(exc)
            if message is None:
                raise
            self._fail(message)

    def _fail(self, message: str) -> None:
        sys.stderr.write(f"realize: error: {message}\n")
        sys.stderr.flush()
        sys.exit(1)
