"""The cliff application behind the ``smiley-like`` command."""

import sys

from cliff.app import App
from cliff.commandmanager import CommandManager

from smiley_like import __version__


DESCRIPTION = "Record a Python program once; look at what it did as often as you like."


class SmileyApp(App):
    """The smiley-like command and its subcommands."""

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
