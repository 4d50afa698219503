"""The cliff application behind the ``smiley-like`` command."""

import argparse
import sys

from cliff.app import App
from cliff.commandmanager import CommandManager

from smiley_like import __version__


class GlobalOptionsParser(argparse.ArgumentParser):
    """The app's own options come before the subcommand, as with git.

    cliff would otherwise pick --help, -v, -q or --debug out of the whole
    command line, including the arguments of the program given to ``run``.
    """

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        index = 0
        while index < len(args) and args[index].startswith("-"):
            action = self._option_string_actions.get(args[index])
            index += 2 if action is not None and action.nargs is None else 1
        namespace, extras = super().parse_known_args(args[:index], namespace)
        return namespace, extras + args[index:]


DESCRIPTION = "Record a Python program once; look at what it did as often as you like."


class SmileyApp(App):
    """The smiley-like command and its subcommands."""

    def build_option_parser(self, description, version, argparse_kwargs=None):
        parser = super().build_option_parser(description, version, argparse_kwargs)
        parser.__class__ = GlobalOptionsParser
        return parser

    def __init__(self):
        self.exit_by_sigint = False  # set by run when the traced program was interrupted
        super().__init__(
            description=DESCRIPTION,
            version=__version__,
            command_manager=CommandManager("smiley_like.commands"),
            deferred_help=True,
        )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    app = SmileyApp()
    # No arguments: show help rather than cliff's interactive shell.
    status = app.run(argv or ["--help"])
    if app.exit_by_sigint:
        # The traced program died of Ctrl-C.  Python ends such a program by
        # SIGINT after its atexit handlers; an uncaught KeyboardInterrupt here
        # makes CPython do exactly that (its traceback was printed already).
        sys.excepthook = lambda *args: None
        raise KeyboardInterrupt
    return status
