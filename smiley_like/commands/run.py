"""``smiley-like run``: run a program exactly as python would, and record it."""

import argparse
import logging
import sys

from cliff.command import Command

from smiley_like import config
from smiley_like.commands.base import ErrorsAsOneLine, add_database_option
from smiley_like.errors import UsageError
from smiley_like.tracer import monitoring, runner
from smiley_like.tracer.recorder import TRACERS, choose_tracer
from smiley_like.tracer.session import Recording
from smiley_like.wire import check_endpoint


def _reset_logging():
    """Undo cliff's logging set-up, so the program configures logging as under python."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


class ProgramArgumentParser(argparse.ArgumentParser):
    """Parses our options up to the script (or ``-m MODULE``); the rest is the program's.

    argparse alone cannot do this: options after the script name, such as
    ``run -m trace --count``, belong to the program, not to us.
    """

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        ours, program = self._split(args)
        namespace, extras = super().parse_known_args(ours, namespace)
        namespace.program = program
        return namespace, extras

    def _split(self, args):
        index = 0
        while index < len(args):
            arg = args[index]
            if arg == "--":
                return args[:index], args[index + 1:]
            if arg == "-m":
                return args[:index + 2], args[index + 2:]
            if arg.startswith("-m") and not arg.startswith("--"):  # -mmodule
                return args[:index + 1], args[index + 1:]
            if not arg.startswith("-") or arg == "-":
                return args[:index], args[index:]
            action = self._option_string_actions.get(arg)
            takes_value = action is not None and action.nargs is None  # flags have nargs=0
            index += 2 if takes_value else 1
        return args, []


class Run(ErrorsAsOneLine, Command):
    """Run a Python script (or -m module) and record what it does."""

    def get_parser(self, prog_name):
        parser = ProgramArgumentParser(
            prog=prog_name, description=self.get_description(), allow_abbrev=False,
            usage=f"{prog_name} [options] SCRIPT [ARGS...] | -m MODULE [ARGS...]",
            add_help=True)
        settings = self.settings
        add_database_option(parser, settings)
        parser.add_argument("-m", dest="module", metavar="MODULE",
                            help="run a library module as a script, like python -m")
        parser.add_argument("--remote", action="store_true",
                            help="send events to a running monitor (see --socket) instead of "
                                 "storing them here")
        parser.add_argument("--socket", default=settings.socket, metavar="URL",
                            help="the monitor's address, with --remote (default: %(default)s; "
                                 f"environment: {config.ENV_PREFIX}SOCKET)")
        parser.add_argument("--no-locals", dest="trace_locals", action="store_false",
                            help="do not record arguments or local variables (return values are kept)")
        parser.add_argument("--calls-only", action="store_true",
                            help="record calls, returns and exceptions (with arguments and "
                                 "return values) but no lines: the cheapest recording")
        parser.add_argument("--tracer", choices=("auto", *TRACERS), default=settings.tracer,
                            help="the trace function: c (compiled, fast), python, or auto: c "
                                 "when it is built (default: %(default)s; "
                                 f"environment: {config.ENV_PREFIX}TRACER)")
        parser.add_argument("--hook", choices=monitoring.HOOKS, default=settings.hook,
                            help="how the C tracer hears of events: settrace, monitoring "
                                 "(sys.monitoring, Python 3.12+), frame-eval (PEP 523, "
                                 "Python 3.11, --calls-only), or auto: monitoring where there "
                                 "is one, else frame-eval for --calls-only (default: "
                                 "%(default)s; "
                                 f"environment: {config.ENV_PREFIX}HOOK)")
        parser.add_argument("--max-repr", type=int, default=settings.max_repr, metavar="N",
                            help="longest text kept for one value (default: %(default)s)")
        parser.add_argument("--max-depth", type=int, default=settings.max_depth, metavar="N",
                            help="how deep nested containers are shown (default: %(default)s)")
        parser.add_argument("--repr-timeout", type=float, default=settings.repr_timeout,
                            metavar="SECONDS",
                            help="give up on a __repr__ that runs longer than this "
                                 "(default: %(default)s)")
        parser.add_argument("--flush-timeout", type=float, default=settings.flush_timeout,
                            metavar="SECONDS",
                            help="at exit, wait at most this long to deliver events "
                                 "(default: %(default)s)")
        parser.add_argument("--no-follow-children", dest="follow_children",
                            action="store_false",
                            help="record only this process, not the Python processes it "
                                 "starts (multiprocessing, os.fork, subprocess)")
        parser.add_argument("--trace-stdlib", action="store_true",
                            help="also trace the standard library")
        parser.add_argument("--trace-site-packages", action="store_true",
                            help="also trace installed packages (site-packages)")
        parser.add_argument("--include", action="append", default=[], metavar="PATH_OR_PACKAGE",
                            help="trace this path or package even if it would be skipped "
                                 "(repeatable)")
        parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                            help="do not trace files matching this glob (repeatable)")
        parser.epilog = ("Everything after SCRIPT (or after -m MODULE) is passed to the "
                         "program untouched.")
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
        if parsed_args.remote:
            check_endpoint(parsed_args.socket)
        settings = self.settings
        settings.max_repr = max(parsed_args.max_repr, 8)
        settings.max_depth = max(parsed_args.max_depth, 1)
        settings.flush_timeout = parsed_args.flush_timeout
        settings.repr_timeout = parsed_args.repr_timeout
        settings.tracer = choose_tracer(parsed_args.tracer)
        settings.hook = monitoring.choose_hook(settings.tracer, parsed_args.hook,
                                               parsed_args.calls_only)
        recording = Recording(
            target, database=parsed_args.database, settings=settings,
            remote=parsed_args.socket if parsed_args.remote else None, trace_locals=parsed_args.trace_locals,
            calls_only=parsed_args.calls_only, follow_children=parsed_args.follow_children,
            filter_options={"trace_stdlib": parsed_args.trace_stdlib,
                            "trace_site_packages": parsed_args.trace_site_packages,
                            "include": tuple(parsed_args.include),
                            "exclude": tuple(parsed_args.exclude)},
            stderr=self.app.stderr)
        recording.prepare()
        _reset_logging()
        recording.outcome = runner.run(target, recording.start_tracing)
        if recording.outcome.status == "interrupted":
            self.app.exit_by_sigint = True
        return recording.outcome.exit_code
