"""``smiley-like monitor``: receive runs sent with ``run --remote``, show them live, store them."""

from cliff.command import Command

from smiley_like import config
from smiley_like.commands.base import (ErrorsAsOneLine, add_color_option, add_database_option,
                                       use_color)
from smiley_like.errors import UsageError
from smiley_like.wire import check_endpoint


class Monitor(ErrorsAsOneLine, Command):
    """Listen for runs recorded with 'run --remote'; show them as they arrive and store them.

    Stop it with Ctrl-C (or SIGTERM): what it received is stored, and runs
    still being recorded are marked interrupted.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        settings = self.settings
        add_database_option(parser, settings)
        parser.add_argument("--socket", default=settings.socket, metavar="URL",
                            help="address to listen on, tcp:// or ipc:// (default: "
                                 f"%(default)s; environment: {config.ENV_PREFIX}SOCKET)")
        shown = parser.add_mutually_exclusive_group()
        shown.add_argument("--summary", dest="mode", action="store_const", const="summary",
                           help="one status line per run, refreshed: events so far, events "
                                "per second, where it is")
        shown.add_argument("--quiet", dest="mode", action="store_const", const="quiet",
                           help="only the start and end of each run")
        parser.set_defaults(mode="events")
        parser.add_argument("--refresh", type=float, default=1.0, metavar="SECONDS",
                            help="how often --summary redraws (default: %(default)s)")
        parser.add_argument("--stall-after", type=float, default=10.0, metavar="SECONDS",
                            help="in --summary, call a thread stalled after this long "
                                 "without events (default: %(default)s)")
        parser.add_argument("--lost-after", type=float, default=30.0, metavar="SECONDS",
                            help="mark a run interrupted when nothing, not even a keepalive, "
                                 "came from it for this long (default: %(default)s)")
        parser.add_argument("--no-locals", dest="show_locals", action="store_false",
                            help="leave arguments, locals and return values out of the "
                                 "events shown")
        add_color_option(parser)
        return parser

    def take_action(self, parsed_args):
        if not 0 < parsed_args.refresh < 3600:
            raise UsageError(f"--refresh must be a number of seconds between 0 and 3600, not "
                             f"{parsed_args.refresh}")
        if not 1 <= parsed_args.lost_after < 10**6:
            raise UsageError(f"--lost-after must be a number of seconds from 1, not "
                             f"{parsed_args.lost_after}")
        if not 0 <= parsed_args.stall_after < 10**6:
            raise UsageError(f"--stall-after must be a number of seconds from 0, not "
                             f"{parsed_args.stall_after}")
        check_endpoint(parsed_args.socket)
        from smiley_like import monitor
        from smiley_like.render.live import LivePrinter
        from smiley_like.store.engine import open_store
        from smiley_like.wire.listener import Listener

        store = open_store(parsed_args.database, create=True,
                           busy_timeout=self.settings.busy_timeout)
        try:
            store.check_writable()
            listener = Listener(parsed_args.socket)
            try:
                out = self.app.stdout
                printer = LivePrinter(
                    out, parsed_args.mode, show_locals=parsed_args.show_locals,
                    color=use_color(parsed_args, out),
                    refresh=parsed_args.refresh, stall_after=parsed_args.stall_after)
                self.app.stderr.write(
                    f"smiley-like: monitor listening on {listener.endpoint}, storing runs in "
                    f"'{parsed_args.database}' (Ctrl-C to stop)\n")
                self.app.stderr.flush()
                return monitor.watch(listener, store, printer, stderr=self.app.stderr,
                                     lost_after=parsed_args.lost_after)
            finally:
                listener.close()
        finally:
            store.close()

