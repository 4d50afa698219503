"""The cliff application behind the ``smiley-like`` command."""

import sys

from cliff.app import App
from cliff.commandmanager import CommandManager

from smiley_like import __version__


class SmileyApp(App):
    """smiley-like: record a Python program once, look at what it did as often as you like."""

    def __init__(self):
        super().__init__(
            description=__doc__.strip() if __doc__ else None,
            version=__version__,
            command_manager=CommandManager("smiley_like.commands"),
            deferred_help=True,
        )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # No arguments: show help rather than cliff's interactive shell.
    return SmileyApp().run(argv or ["--help"])
