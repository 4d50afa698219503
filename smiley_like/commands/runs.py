"""``smiley-like list``, ``show`` and ``delete``: the recorded runs.

The database layer is imported when a command runs: cliff imports every
command module, and ``run`` must not load SQLAlchemy into the traced program.
"""

import json
import time

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from smiley_like.commands.base import ErrorsAsOneLine, OneRun, add_database_option
from smiley_like.errors import UsageError

RUN_COLUMNS = ("Run", "Command", "Started", "Duration", "Ended", "Events", "Processes")
PROCESS_COLUMNS = ("Pid", "Parent", "Command", "Started", "Duration", "Ended", "Events",
                   "Threads", "Recorded as")


def _tracer(options):
    """Which tracer recorded, and through which hook if not sys.settrace."""
    tracer = options.get("tracer", "python")
    hook = {"monitoring": "sys.monitoring", "frame-eval": "frame evaluation hook"}.get(
        options.get("hook"))
    return f"{tracer} ({hook})" if hook else tracer


def _when(stamp):
    if stamp is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _duration(run):
    if run.started_at is None or run.ended_at is None:
        return ""
    return f"{run.ended_at - run.started_at:.3f}s"


def command_line(run):
    """The program's argv as recorded."""
    try:
        return json.loads(run.command)
    except ValueError:
        return [run.command]


def _command(run):
    return " ".join(command_line(run))


def _shorten(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."


def ended(run):
    """How a run ended, in a few words."""
    if run.status == "running":
        text = "running"
    elif run.status == "finished":
        text = f"exit {run.exit_code}" if run.exit_code is not None else "ended"
    elif run.status == "error":
        text = f"{run.exc_type} (exit {run.exit_code})"
    elif run.status == "interrupted" and run.ended_at is None:
        text = "interrupted: the recording stopped before the program ended"
    elif run.status == "interrupted":
        text = "interrupted (KeyboardInterrupt)"
    elif run.status == "abrupt":
        text = "abruptly" + (f" (exit {run.exit_code})" if run.exit_code is not None else "")
    else:
        text = run.status
    if run.lost_events:
        text += f", incomplete: {run.lost_events} events lost"
    return text


class ListRuns(ErrorsAsOneLine, Lister):
    """List recorded runs, newest first."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        add_database_option(parser, self.settings)
        return parser

    def take_action(self, parsed_args):
        from smiley_like.store import queries

        store = self.open_store(parsed_args)
        try:
            rows = queries.runs(store)
        finally:
            store.close()
        return RUN_COLUMNS, [(run.id, _command(run), _when(run.started_at), _duration(run),
                              ended(run), run.event_count, run.processes) for run in rows]


class ListProcesses(OneRun, Lister):
    """List the processes of a run: the program's own, and every child it started."""

    def take_action(self, parsed_args):
        from smiley_like.store import queries

        with self.run_in_store(parsed_args) as (store, run_id):
            rows = queries.processes(store, run_id)
            threads = {row.id: len(queries.threads(store, row.id)) for row in rows}
        pids = {row.id: row.pid for row in rows}
        return PROCESS_COLUMNS, [
            (row.pid, pids.get(row.parent_id, "") if row.parent_id else "",
             _shorten(_command(row), 80),
             _when(row.started_at), _duration(row), ended(row), row.event_count,
             threads[row.id], row.id)
            for row in rows]


class ShowRun(OneRun, ShowOne):
    """Show one run in detail, with its error and traceback if it failed."""


    def take_action(self, parsed_args):
        from smiley_like.store import queries

        with self.run_in_store(parsed_args) as (store, run_id):
            run = queries.run(store, run_id)
            threads = queries.threads(store, run_id)
            files = queries.files(store, run_id)
            processes = queries.processes(store, run_id)
        children = [row for row in processes if row.id != run.id]
        fields = {
            "Run": run.id,
            "Command": _command(run),
            "Directory": run.cwd,
            "Started": _when(run.started_at),
            "Ended at": _when(run.ended_at),
            "Duration": _duration(run),
            "Ended": ended(run),
            "Status": run.status,
            "Exit code": run.exit_code,
            "Exception": ": ".join(filter(None, [run.exc_type, run.exc_message])),
            "Python": run.python,
            "Tracer": _tracer(json.loads(run.options or "{}")),
            "Host": run.hostname,
            "Pid": run.pid,
            "Events": run.event_count,
            "Lost events": run.lost_events,
            "Threads": ", ".join(f"{t.thread_no}:{t.name}" for t in threads),
            "Child processes": (", ".join(f"{row.pid} ({ended(row)})" for row in children)
                                if run.parent_id is None else f"(this is a child of run "
                                                              f"{run.root_id})"),
            "Files": "\n".join(path for path, _ in files.values()),
            "Notes": "\n".join(json.loads(run.notes or "[]")),
            "Traceback": (run.traceback or "").rstrip("\n"),
        }
        return tuple(fields), tuple(fields.values())


class DeleteRuns(ErrorsAsOneLine, Command):
    """Delete runs and everything recorded for them."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        add_database_option(parser, self.settings)
        parser.add_argument("runs", nargs="+", metavar="RUN",
                            help="run id, unique prefix, or 'last'")
        parser.add_argument("--force", action="store_true",
                            help="also delete runs that are still being recorded")
        return parser

    def take_action(self, parsed_args):
        from smiley_like.store import queries

        store = self.open_store(parsed_args)
        try:
            run_ids = list(dict.fromkeys(queries.resolve_run(store, ref)
                                         for ref in parsed_args.runs))
            running = [run_id for run_id in run_ids
                       if queries.run(store, run_id).status == "running"]
            if running and not parsed_args.force:
                raise UsageError(f"run {running[0]} is still being recorded (or its recorder "
                                 "died unseen): use --force to delete it anyway")
            queries.delete_runs(store, run_ids)
        finally:
            store.close()
        for run_id in run_ids:
            self.app.stdout.write(f"deleted {run_id}\n")
