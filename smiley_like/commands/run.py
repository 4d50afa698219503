"""``smiley-like run``: run a program exactly as python would, and record it."""

import argparse
import logging

from cliff.command import Command

from smiley_like.commands.base import ErrorsAsOneLine, add_database_option
from smiley_like.errors import UsageError
from smiley_like.tracer import runner
from smiley_like.tracer.session import Recording


def _reset_logging():
    """Undo cliff's logging set-up, so the program configures logging as under python."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


class Run(ErrorsAsOneLine, Command):
    """Run a Python script (or -m module) and record what it does."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        settings = self.settings
        add_database_option(parser, settings)
        parser.add_argument("-m", dest="module", metavar="MODULE",
                            help="run a library module as a script, like python -m")
        parser.add_argument("--remote", nargs="?", const=settings.socket, metavar="URL",
                            help="send events to a running monitor instead of storing them "
                                 "here (default URL: %(const)s)")
        parser.add_argument("--no-locals", dest="trace_locals", action="store_false",
                            help="do not record arguments or local variables (return values are kept)")
        parser.add_argument("--max-repr", type=int, default=settings.max_repr, metavar="N",
                            help="longest text kept for one value (default: %(default)s)")
        parser.add_argument("--max-depth", type=int, default=settings.max_depth, metavar="N",
                            help="how deep nested containers are shown (default: %(default)s)")
        parser.add_argument("--flush-timeout", type=float, default=settings.flush_timeout,
                            metavar="SECONDS",
                            help="at exit, wait at most this long to deliver events "
                                 "(default: %(default)s)")
        parser.add_argument("--trace-stdlib", action="store_true",
                            help="also trace the standard library")
        parser.add_argument("--trace-site-packages", action="store_true",
                            help="also trace installed packages (site-packages)")
        parser.add_argument("--include", action="append", default=[], metavar="PATH_OR_PACKAGE",
                            help="trace this path or package even if it would be skipped "
                                 "(repeatable)")
        parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                            help="do not trace files matching this glob (repeatable)")
        parser.add_argument("program", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS...]",
                            help="the script and its arguments (with -m: the module's "
                                 "arguments)")
        return parser

    def take_action(self, parsed_args):
        if parsed_args.module:
            target = runner.Target(module=parsed_args.module, args=parsed_args.program)
        elif parsed_args.program:
            target = runner.Target(script=parsed_args.program[0],
                                   args=parsed_args.program[1:])
        else:
            raise UsageError("nothing to run: give a script, or -m MODULE")
        runner.check(target)
        settings = self.settings
        settings.max_repr = max(parsed_args.max_repr, 8)
        settings.max_depth = max(parsed_args.max_depth, 1)
        settings.flush_timeout = parsed_args.flush_timeout
        recording = Recording(
            target, database=parsed_args.database, settings=settings,
            remote=parsed_args.remote, trace_locals=parsed_args.trace_locals,
            filter_options={"trace_stdlib": parsed_args.trace_stdlib,
                            "trace_site_packages": parsed_args.trace_site_packages,
                            "include": tuple(parsed_args.include),
                            "exclude": tuple(parsed_args.exclude)},
            stderr=self.app.stderr)
        recording.prepare()
        _reset_logging()
        recording.outcome = runner.run(target, recording.start_tracing)
        return recording.outcome.exit_code
