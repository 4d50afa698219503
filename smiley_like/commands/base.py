"""What every command shares: the --database option and one-line errors."""

import contextlib
import logging
import traceback

from smiley_like import config
from smiley_like.errors import SmileyError

LOG = logging.getLogger(__name__)

#: Exit status for our own failures (bad input, unusable database).
ERROR_EXIT = 2


def add_run_argument(parser):
    parser.add_argument("run", metavar="RUN", help="run id, unique prefix, or 'last'")


def add_process_option(parser, default):
    parser.add_argument("--process", action="append", default=[], metavar="PID",
                        help=f"only this process of the run (pid; repeatable; default: "
                             f"{default})")


def add_color_option(parser):
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour the output (default: auto, on a terminal)")


def use_color(parsed_args, out):
    """Whether --color asks for colour on *out*."""
    return parsed_args.color == "always" or (
        parsed_args.color == "auto" and getattr(out, "isatty", lambda: False)())


def add_database_option(parser, settings):
    parser.add_argument(
        "--database", default=settings.database, metavar="PATH_OR_URL",
        help="run database: a file path or an SQLAlchemy URL (default: %(default)s; "
             f"environment: {config.ENV_PREFIX}DATABASE)")


class ErrorsAsOneLine:
    """Mixin for cliff commands: a SmileyError is one line on stderr and exit status 2.

    With the app's ``--debug`` the traceback is printed too.  Unexpected
    exceptions are reported the same way, marked as internal errors.
    """

    def run(self, parsed_args):
        try:
            if getattr(self.app, "_smiley_settings_error", None) is not None:
                raise self.app._smiley_settings_error
            return super().run(parsed_args)
        except SmileyError as error:
            self._report(str(error))
        except BrokenPipeError:
            raise  # the reader went away (| head): cliff exits quietly
        except Exception as error:
            self._report(f"internal error: {type(error).__name__}: {error}")
        return ERROR_EXIT

    def _report(self, text):
        if self.app.options.debug:
            traceback.print_exc(file=self.app.stderr)
        self.app.stderr.write(f"smiley-like: {text}\n")
        self.app.stderr.flush()

    def open_store(self, parsed_args):
        """The run database named on the command line, for reading."""
        from smiley_like.store.engine import open_store

        return open_store(parsed_args.database, busy_timeout=self.settings.busy_timeout)

    @contextlib.contextmanager
    def run_in_store(self, parsed_args):
        """Yield (store, run id) for the RUN argument; close the store afterwards."""
        from smiley_like.store import queries  # not at import: run must not load SQLAlchemy

        store = self.open_store(parsed_args)
        try:
            yield store, queries.resolve_run(store, parsed_args.run)
        finally:
            store.close()

    @property
    def settings(self):
        settings = getattr(self.app, "_smiley_settings", None)
        if settings is None:
            try:
                settings = config.load()
            except SmileyError as error:  # reported by run(), as one line
                self.app._smiley_settings_error = error
                settings = config.Settings()
            self.app._smiley_settings = settings
        return settings


class OneRun(ErrorsAsOneLine):
    """Mixin for commands about one recorded run: ``--database`` and the RUN argument."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        add_database_option(parser, self.settings)
        add_run_argument(parser)
        return parser
