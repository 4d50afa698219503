"""``smiley-like diff``: where two recorded runs part.

Imports of the database layer are in take_action: see commands/runs.py.
"""

import contextlib
import json
import typing

from cliff.command import Command

from smiley_like.commands.base import (ErrorsAsOneLine, add_color_option, add_database_option,
                                       use_color)
from smiley_like.commands.runs import command_line, ended
from smiley_like.errors import UsageError

#: Exit status when the runs differ (0: equivalent, 2: error), as with diff(1).
DIFFER_EXIT = 1


class _Side(typing.NamedTuple):
    run: typing.Any  # diff.Run
    description: dict  # what the report says about the run
    renderer: typing.Any  # its ConsoleRenderer
    matched: bool  # whether --function names one of its functions


class Diff(ErrorsAsOneLine, Command):
    """Compare two recorded runs: where control flow or values first differ (exit 1 if they do)."""

    def get_parser(self, prog_name):
        from smiley_like.diff import WINDOW

        parser = super().get_parser(prog_name)
        add_database_option(parser, self.settings)
        parser.add_argument("run_a", metavar="RUN_A", help="run id, unique prefix, or 'last'")
        parser.add_argument("run_b", metavar="RUN_B", help="run id, unique prefix, or 'last'")
        parser.add_argument("--all", action="store_true",
                            help="every divergence, in order, and a summary")
        parser.add_argument("--context", type=int, default=3, metavar="N",
                            help="events shown before each divergence (default: %(default)s)")
        parser.add_argument("--no-mask", dest="mask", action="store_false",
                            help="compare addresses, ids, timestamps and pids in values too")
        parser.add_argument("--ignore", action="append", default=[], metavar="NAME",
                            help="do not compare this variable (repeatable)")
        parser.add_argument("--function", action="append", default=[], metavar="NAME",
                            help="compare only calls of this function and what they call "
                                 "(name, qualified name or glob; repeatable)")
        parser.add_argument("--thread", metavar="NAME_OR_NO",
                            help="compare this thread (default: the main thread)")
        parser.add_argument("--window", type=int, default=WINDOW, metavar="EVENTS",
                            help="look-ahead for re-aligning the runs (default: %(default)s)")
        parser.add_argument("-f", "--format", choices=("text", "json"), default="text",
                            help="output format (default: text)")
        add_color_option(parser)
        return parser

    def take_action(self, parsed_args):
        from smiley_like import diff

        if parsed_args.context < 0 or parsed_args.window < 1:
            raise UsageError("--context must be 0 or more and --window 1 or more")
        store = self.open_store(parsed_args)
        try:
            color = parsed_args.format == "text" and use_color(parsed_args, self.app.stdout)
            sides = [self._side(store, ref, parsed_args, color)
                     for ref in (parsed_args.run_a, parsed_args.run_b)]
            if parsed_args.function and not any(side.matched for side in sides):
                raise UsageError("no recorded function matches "
                                 + ", ".join(parsed_args.function) + " in either run")
            comparison = diff.Comparison(
                *(side.run for side in sides), mask=parsed_args.mask,
                ignore=parsed_args.ignore, window=parsed_args.window,
                context=parsed_args.context)
            write = self._json if parsed_args.format == "json" else self._text
            with contextlib.closing(comparison):
                differ = write(comparison, [side.description for side in sides],
                               [side.renderer for side in sides], parsed_args.all, color)
        finally:
            store.close()
        self.app.stdout.flush()
        return DIFFER_EXIT if differ else 0

    def _side(self, store, ref, parsed_args, color):
        """The _Side of one run."""
        from smiley_like import diff, replay
        from smiley_like.render.console import ConsoleRenderer
        from smiley_like.store import queries

        run_id = queries.resolve_run(store, ref)
        run = queries.run(store, run_id)
        threads = queries.threads(store, run_id)
        if parsed_args.thread is None:
            thread_nos = {0}
        else:
            try:
                thread_nos = replay.select_threads(threads, {parsed_args.thread})
            except UsageError as error:
                raise UsageError(f"run {run_id}: {error}") from None
            if len(thread_nos) > 1:
                raise UsageError(f"thread '{parsed_args.thread}' names several threads in run "
                                 f"{run_id}: give its number")
        code_map = queries.codes(store, run_id)
        code_ids = None
        if parsed_args.function:
            try:
                code_ids = replay.select_codes(code_map, parsed_args.function)
            except UsageError:
                code_ids = set()
        renderer = ConsoleRenderer(self.app.stdout, queries.files(store, run_id), cwd=run.cwd,
                                   color=color)
        events = queries.events(store, run_id, thread_nos=thread_nos, code_map=code_map)
        if len(threads) > 1:
            events = (event for event in events if event.thread_no in thread_nos)
        if code_ids is not None:
            events = diff.within(events, code_ids)
        argv = command_line(run)
        description = {"id": run.id, "command": " ".join(argv), "program": argv[0] if argv
                       else "", "ended": ended(run), "events": run.event_count,
                       "threads": len(threads),
                       "thread": next((t.name for t in threads if t.thread_no in thread_nos),
                                      None)}
        noise = (run.pid, *(t.ident for t in threads), *(t.native_id for t in threads))
        return _Side(diff.Run(events, renderer.code_source, ended(run), noise), description,
                     renderer, bool(code_ids))

    def _text(self, comparison, runs, renderers, every, color):
        from smiley_like import diff
        from smiley_like.render.diff import TextReport

        report = TextReport(self.app.stdout, renderers, color)
        report.header(runs)
        if every:
            flow_seen = False
            for number, divergence in enumerate(comparison, 1):
                heading = f"Divergence {number}"
                if divergence.flow and not flow_seen:
                    flow_seen = True
                    heading += " (the control flow parts)"
                report.divergence(divergence, heading)
            summary = comparison.summary()
            if not summary.divergences:
                report.equivalent()
            report.summary(summary)
            return summary.divergences > 0
        headline, earlier = diff.first(comparison)
        if headline is None:
            report.equivalent()
            return False
        if earlier is not None:
            report.divergence(earlier, "Values first differ")
        report.divergence(headline, "First divergence")
        return True

    def _json(self, comparison, runs, renderers, every, color):
        from smiley_like import diff
        from smiley_like.render.diff import divergence_dict, summary_dict

        out = self.app.stdout
        def as_dict(divergence):
            return divergence and divergence_dict(divergence, renderers)

        if not every:
            headline, earlier = diff.first(comparison)
            json.dump({"a": runs[0], "b": runs[1], "equivalent": headline is None,
                       "first": as_dict(headline), "values_first_differ": as_dict(earlier)},
                      out, indent=2)
            out.write("\n")
            return headline is not None
        # Streamed: with --all there may be more divergences than fit in memory.
        out.write('{"a": %s, "b": %s, "divergences": [' % (json.dumps(runs[0]),
                                                          json.dumps(runs[1])))
        firsts = diff.Headline()
        for number, divergence in enumerate(comparison):
            out.write(("," if number else "") + "\n" + json.dumps(as_dict(divergence)))
            firsts.see(divergence)
        summary = comparison.summary()
        headline, earlier = firsts.result()
        out.write('\n], "first": %s, "values_first_differ": %s, "summary": %s, '
                  '"equivalent": %s}\n' % (json.dumps(as_dict(headline)),
                                           json.dumps(as_dict(earlier)),
                                           json.dumps(summary_dict(summary)),
                                           json.dumps(not summary.divergences)))
        return summary.divergences > 0
