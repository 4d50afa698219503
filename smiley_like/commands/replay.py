"""``smiley-like replay``: what happened, event by event, with source and locals.

Imports of the database layer are in take_action: see commands/runs.py.
"""


from cliff.command import Command

from smiley_like.commands.base import (OneRun, add_color_option, add_process_option,
                                       use_color)
from smiley_like.errors import UsageError


class Replay(OneRun, Command):
    """Print a recorded run's events in order, with source lines and changed locals."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("--thread", action="append", default=[], metavar="NAME_OR_NO",
                            help="only this thread (name or number; repeatable)")
        parser.add_argument("--function", action="append", default=[], metavar="NAME",
                            help="only events in this function (name, qualified name or "
                                 "glob; repeatable)")
        parser.add_argument("--file", action="append", default=[], metavar="GLOB",
                            help="only events in files matching this (repeatable)")
        parser.add_argument("--from", dest="start", type=int, metavar="SEQ",
                            help="start at this sequence number")
        parser.add_argument("--to", dest="stop", type=int, metavar="SEQ",
                            help="stop after this sequence number")
        parser.add_argument("--no-locals", dest="show_locals", action="store_false",
                            help="leave out arguments, locals and return values")
        add_process_option(parser, "the program's first process")
        add_color_option(parser)
        return parser

    def take_action(self, parsed_args):
        from smiley_like import replay
        from smiley_like.render.console import ConsoleRenderer
        from smiley_like.store import queries

        with self.run_in_store(parsed_args) as (store, run_id):
            processes = queries.processes(store, run_id)
            if parsed_args.process:
                chosen = queries.select_processes(processes, parsed_args.process)
                if len(chosen) > 1:
                    raise UsageError("replay shows one process at a time: give one --process")
                run = chosen[0]
            else:
                run = processes[0]
                if len(processes) > 1:
                    self.app.stderr.write(
                        f"smiley-like: this run has {len(processes) - 1} more processes "
                        f"({', '.join(str(p.pid) for p in processes[1:])}); replay one with "
                        "--process PID\n")
            run_id = run.id
            threads = queries.threads(store, run_id)
            out = self.app.stdout
            color = use_color(parsed_args, out)
            renderer = ConsoleRenderer(
                out, queries.files(store, run_id), cwd=run.cwd,
                show_locals=parsed_args.show_locals,
                thread_names={t.thread_no: t.name for t in threads} if len(threads) > 1
                else None,
                color=color)
            for event in replay.events(store, run_id, start=parsed_args.start,
                                       stop=parsed_args.stop, threads=parsed_args.thread,
                                       functions=parsed_args.function,
                                       files=parsed_args.file):
                renderer.write(event)
        if hasattr(out, "flush"):
            out.flush()
        return 0
