"""``smiley-like threads`` and ``where``: the threads of a run, and where each one is.

Imports of the database layer are in take_action: see commands/runs.py.
"""

import time

from cliff.command import Command
from cliff.lister import Lister

from smiley_like.commands.base import (OneRun, add_color_option, add_process_option,
                                       use_color)

THREAD_COLUMNS = ("Thread", "Name", "Ident", "Process", "Started", "Finished", "First event",
                  "Last event", "Events", "Ended")


def _clock(run, t_ns):
    """Wall-clock time of an event, to the millisecond."""
    if t_ns is None or run.started_at is None or run.clock_ns is None:
        return ""
    stamp = run.started_at + (t_ns - run.clock_ns) / 1e9
    return time.strftime("%H:%M:%S", time.localtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}"


def _ending(place, run):
    """How a thread's recorded code ended, or where it was when the run ended."""
    if not place.frames:
        return place.state
    top = place.frames[-1]
    name = top.code.name if top.call_id >= 0 else "code whose call was not recorded"
    where = f"in {name} at line {top.line_no}"
    return f"running, {where}" if run.status == "running" else f"still running {where} at the end"


def chosen_processes(store, run_id, parsed_args):
    """The process rows a command shows: those given with --process, or all."""
    from smiley_like.store import queries

    rows = queries.processes(store, run_id)
    return queries.select_processes(rows, parsed_args.process) if parsed_args.process \
        else rows


class Threads(OneRun, Lister):
    """List the threads of a run, in all its processes: when each ran, events, how it ended."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        add_process_option(parser, "all")
        return parser

    def take_action(self, parsed_args):
        from smiley_like import where
        from smiley_like.store import queries

        rows = []
        with self.run_in_store(parsed_args) as (store, run_id):
            for run in chosen_processes(store, run_id, parsed_args):
                places = {place.thread.thread_no: place
                          for place in where.places(store, run.id, with_locals=False)}
                for thread in queries.threads(store, run.id):
                    place = places.get(thread.thread_no)
                    rows.append((thread.thread_no, thread.name, thread.ident, run.pid,
                                 _clock(run, thread.started_ns), _clock(run, thread.ended_ns),
                                 _clock(run, thread.first_ns), _clock(run, thread.last_ns),
                                 thread.event_count,
                                 _ending(place, run) if place else "no events"))
        return THREAD_COLUMNS, rows


class Where(OneRun, Command):
    """Show where each thread of a run is, or was when the run ended: stack, line, locals."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("--thread", action="append", default=[], metavar="NAME_OR_NO",
                            help="only this thread (name or number; repeatable)")
        add_process_option(parser, "all")
        add_color_option(parser)
        return parser

    def take_action(self, parsed_args):
        from smiley_like import replay, where
        from smiley_like.render.console import ConsoleRenderer
        from smiley_like.store import queries

        out = self.app.stdout
        with self.run_in_store(parsed_args) as (store, run_id):
            pids = {row.id: row.pid for row in queries.processes(store, run_id)}
            for index, run in enumerate(chosen_processes(store, run_id, parsed_args)):
                thread_nos = replay.select_threads(queries.threads(store, run.id),
                                                   set(parsed_args.thread)) \
                    if parsed_args.thread else None
                places = where.places(store, run.id, thread_nos)
                renderer = ConsoleRenderer(out, queries.files(store, run.id), cwd=run.cwd,
                                           color=use_color(parsed_args, out))
                if index:
                    out.write("\n")
                self._show_process(out, run, places, renderer, pids.get(run.parent_id))
        return 0

    def _show_process(self, out, run, places, renderer, parent_pid):
        from smiley_like import where

        state = "still being recorded" if run.status == "running" else "ended"
        if run.parent_id is None:
            out.write(f"run {run.id} ({state}), pid {run.pid}\n")
        else:
            parent = f"process {parent_pid}" if parent_pid else f"run {run.parent_id}"
            out.write(f"process {run.pid} ({state}), child of {parent}, recorded as "
                      f"{run.id}\n")
        for place in places:
            thread = place.thread
            age = where.age(place, run)
            when = "" if age is None else (
                f", last event {age:.3f} s ago" if run.status == "running"
                else f", last event {age:.3f} s before the run ended")
            out.write(f"\nthread {thread.thread_no} {thread.name} (ident {thread.ident}): "
                      f"{_ending(place, run)}{when}\n")
            if not place.frames:
                out.write(f"  {renderer.format(place.last).strip()}\n")
                continue
            width = max(len(renderer.location(f.code, f.line_no)) for f in place.frames)
            names = max(len(f.code.name) for f in place.frames)
            for index, frame in enumerate(place.frames):
                marker = ">" if index == len(place.frames) - 1 else " "
                out.write(f"  {marker} {renderer.location(frame.code, frame.line_no):<{width}}"
                          f"  {frame.code.name:<{names}}  "
                          f"{renderer.source_line(frame.code.file_no, frame.line_no)}\n")
            if place.locals_since:
                out.write(f"      (variables that changed since {place.locals_since})\n")
            for name, text in (place.locals or {}).items():
                out.write(f"        {name} = {text}\n")
        if any(place.lost_events for place in places):
            out.write(f"\n{places[0].lost_events} events of this process were lost: frames "
                      "called in them are missing from these stacks\n")
