"""What the monitor shows while runs arrive: events, a status line per run, or just starts and ends.

The printer is a sink like the store writer, but it must never slow the
store down: its sink methods only update counters and queue work, and a
thread of its own does the formatting and the (possibly blocking) writes.
When that thread falls behind, whole batches are skipped and the skip is
shown; the writer has stored them all the same.
"""

import collections
import threading
import time

from smiley_like.events import Code, rebuild, unknown_code
from smiley_like.render.console import ConsoleRenderer, relative_path

#: Batches waiting to be printed before new ones are skipped.
MAX_PENDING = 8
#: Events printed per second at most: more than anyone reads, and it keeps the
#: printer's share of the interpreter (the GIL) small next to the store's.
MAX_EVENTS_PER_SECOND = 5000

MODES = ("events", "summary", "quiet")

_UP_AND_CLEAR = "\033[{}F\033[J"


class _Run:
    """What the printer knows of one run."""

    def __init__(self, run_id, pid, info=None):
        self.run_id = run_id
        self.pid = pid
        self.info = info or {}
        # A child process is shown as a process of its run: "[root pid]".
        root = self.info.get("root")
        self.root = root if isinstance(root, str) and root else run_id
        self.label = run_id[:8] if self.root == run_id else f"{self.root[:8]} pid {pid}"
        self.files = {}  # file_no -> (path, source lines)
        self.codes = {}  # code_id -> Code
        self.events = 0  # events received
        self.skipped = 0  # events received and not shown
        self.where = None  # (code_id, line_no, open frames) of the last event received
        self.threads = {}  # thread_no -> name
        self.places = {}  # thread_no -> (code_id, line_no, open frames) at its last event
        self.seen = {}  # thread_no -> time.monotonic() its last events arrived
        self.rate = 0.0
        self.counted = (time.monotonic(), 0)  # when and how many, at the last rate update
        self.renderer = None

    @property
    def command(self):
        argv = self.info.get("argv") or []
        return " ".join(map(str, argv)) or f"pid {self.pid}"

    def define(self, defs):
        for item in defs:
            if item[0] == "file":
                _, file_no, path, _digest, text = item
                self.files[file_no] = (path, text.splitlines() if text is not None else None)
            elif item[0] == "code":
                _, code_id, file_no, name, first_line = item
                path = self.files.get(file_no, ("?", None))[0]
                self.codes[code_id] = Code(code_id, file_no, path, name, first_line)
            elif item[0] == "thread":
                self.threads[item[1]] = item[4]

    def location(self, where=None):
        where = where or self.where
        if where is None:
            return ""
        code_id, line_no = where[:2]
        code = self.codes.get(code_id) or unknown_code(code_id)
        return f"{relative_path(code.path, self.info.get('cwd'))}:{line_no} in {code.name}"


class LivePrinter:
    """A monitor sink that shows runs as they arrive on *out*."""

    def __init__(self, out, mode="events", *, color=False, show_locals=True, refresh=1.0,
                 stall_after=10.0):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.out = out
        self.mode = mode
        self.color = color
        self.show_locals = show_locals
        self.refresh = refresh
        self.stall_after = stall_after
        self.tty = getattr(out, "isatty", lambda: False)()
        self._runs = {}  # run_id -> _Run, the runs open now
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue = collections.deque()  # ("line", text) | ("batch", run, batch)
        self._pending_batches = 0
        self._closing = False
        self._shown_lines = 0  # status lines on screen (summary on a terminal)
        self._last_run = None  # run whose events were printed last
        self._allowance = (time.monotonic(), MAX_EVENTS_PER_SECOND)
        self._gone = False  # the output is gone: nothing is queued any more
        self.failures = 0
        self._thread = threading.Thread(target=self._work, name="smiley-like-printer",
                                        daemon=True)
        self._thread.start()

    # -- sink interface: called on the monitor's thread, never blocks ----------

    def start(self, message, info):
        with self._lock:
            run = self._runs.get(message.run_id)
            if run is None:
                run = self._runs[message.run_id] = _Run(message.run_id, message.pid, info)
                self._say(f"[{run.label}] started  {run.command}  (pid {message.pid})")
            else:  # joined earlier, or the sender repeats it after a reconnection
                run.info = info

    def batch(self, batch):
        message = batch.message
        with self._lock:
            if self._gone:
                return
            run = self._runs.get(message.run_id)
            if run is None:  # a run that started before we did
                run = self._runs[message.run_id] = _Run(message.run_id, message.pid)
                self._say(f"[{run.label}] joined   a run already under way (pid {message.pid})")
            # The header's count, not len(batch.events): decoding is for events mode only.
            count = batch.message.header["count"]
            run.events += count
            if count:
                places = batch.where or {}
                # The store writer lists the thread of the batch's last event last.
                run.where = places[next(reversed(places))] if places else None
                now = time.monotonic()
                for thread_no, place in places.items():
                    run.places[thread_no] = place
                    run.seen[thread_no] = now
            if self.mode != "events":
                run.define(batch.defs)
                return
            if self._pending_batches >= MAX_PENDING:
                run.skipped += count
                self._queue.append(("defs", run, batch.defs))
            else:
                self._pending_batches += 1
                self._queue.append(("batch", run, batch))
            self._wake.notify()

    def end(self, message, info):
        with self._lock:
            run = self._runs.pop(message.run_id, None) or _Run(message.run_id, message.pid)
            if not self._gone:
                self._queue.append(("end", run, info))
                self._wake.notify()

    def interrupted(self, run_ids, reason):
        """These runs are no longer recorded here: the monitor stops, or they fell silent."""
        with self._lock:
            for run_id in run_ids:
                run = self._runs.pop(run_id, None) or _Run(run_id, 0)
                self._say(f"[{run.label}] interrupted: {reason} ({run.events} events received "
                          "here)")

    def close(self):
        """Print what is queued (skipping batches not shown yet) and stop."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join(10)

    # -- the printing thread ------------------------------------------------

    def _say(self, text):
        """Queue one line (the lock is held)."""
        if self._gone:
            return
        self._queue.append(("line", None, text))
        self._wake.notify()

    def _work(self):
        next_status = time.monotonic() + self.refresh
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    timeout = next_status - time.monotonic() if self.mode == "summary" else None
                    if timeout is not None and timeout <= 0:
                        break
                    self._wake.wait(timeout)
                items = list(self._queue)
                self._queue.clear()
                closing = self._closing
                status = None
                if self.mode == "summary" and (time.monotonic() >= next_status or closing):
                    next_status = time.monotonic() + self.refresh
                    status = self._status_lines()
            try:
                self._print(items, status, closing)
            except OSError:  # the terminal is gone: keep storing, stop showing
                with self._lock:
                    self._gone = True
                    self._queue.clear()
                return
            if closing:
                return

    def _print(self, items, status, closing):
        out = self.out
        if self._shown_lines and (items or status is not None):
            out.write(_UP_AND_CLEAR.format(self._shown_lines))
            self._shown_lines = 0
        for kind, run, item in items:
            try:
                self._print_item(kind, run, item, closing)
            except OSError:
                raise
            except Exception as error:  # something we cannot show: say so once, go on
                self.failures += 1
                if self.failures == 1:
                    out.write(f"smiley-like: could not show an event ({type(error).__name__}: "
                              f"{error}); it is stored\n")
        if status is not None and not closing:
            for line in status:
                out.write(line + "\n")
            if self.tty:
                self._shown_lines = len(status)
        out.flush()

    def _print_item(self, kind, run, item, closing):
        out = self.out
        if kind == "line":
            out.write(item + "\n")
        elif kind == "defs":
            run.define(item)
        elif kind == "end":
            not_shown = f" ({run.skipped} not shown)" if run.skipped else ""
            out.write(f"[{run.label}] ended    {_ending(item)}, {_counts(item)}"
                      f"{not_shown}\n")
        else:
            self._print_batch(run, item, skip=closing)

    def _print_batch(self, run, batch, skip):
        with self._lock:
            self._pending_batches -= 1
        run.define(batch.defs)
        events = batch.events
        shown = 0 if skip else min(len(events), self._take_allowance(len(events)))
        if shown:
            self._print_events(run, batch, events[:shown])
        with self._lock:
            run.skipped += len(events) - shown

    def _take_allowance(self, wanted):
        now = time.monotonic()
        since, left = self._allowance
        if now - since >= 1.0:
            since, left = now, MAX_EVENTS_PER_SECOND
        given = min(wanted, left)
        self._allowance = (since, left - given)
        return given

    def _print_events(self, run, batch, events):
        out = self.out
        if run is not self._last_run:
            out.write(f"--- [{run.label}] {run.command}\n")
            self._last_run = run
        with self._lock:
            skipped, run.skipped = run.skipped, 0
        if skipped:
            out.write(f"    ... {skipped} events not shown: the terminal could not keep up "
                      "(all are stored)\n")
        if run.renderer is None:
            run.renderer = ConsoleRenderer(out, run.files, cwd=run.info.get("cwd"),
                                           show_locals=self.show_locals, color=self.color)
        stacks = batch.stacks if batch.stacks is not None else {}
        seq = batch.message.header["seq"]
        lines = []
        for event in events:
            lines.append(run.renderer.format(rebuild(event, seq, stacks, run.codes)))
            seq += 1
        out.write("\n".join(lines) + "\n")

    def _status_lines(self):
        """A line per open run, and one per thread under it (the lock is held).

        A thread is *busy* while its events keep coming, and *stalled* once
        none came for ``stall_after`` seconds: blocked, waiting, or stuck in
        code that is not recorded.
        """
        now = time.monotonic()
        lines = []
        order = {}  # root -> position of its first process: children under their run
        for run in self._runs.values():
            order.setdefault(run.root, len(order))
        for run in sorted(self._runs.values(), key=lambda run: order[run.root]):
            then, count = run.counted
            if now - then >= 0.5:
                run.rate = (run.events - count) / (now - then)
                run.counted = (now, run.events)
            lines.append(f"[{run.label}] {run.command[:40]:<40} {run.events:>12,} events "
                         f"{run.rate:>12,.0f}/s  {run.location()}")
            for thread_no, place in sorted(run.places.items()):
                silent = now - run.seen[thread_no]
                if not place[2]:  # no frame open: its recorded code returned
                    state = "ended, last"
                elif silent >= self.stall_after:
                    state = f"stalled {silent:.0f} s"
                else:
                    state = "busy"
                name = str(run.threads.get(thread_no, "?"))
                lines.append(f"    thread {thread_no} {name[:20]:<20} {state} at "
                             f"{run.location(place[:2])}")
        return lines


def _ending(info):
    status = info.get("status", "finished")
    if status == "finished":
        return f"exit {info.get('exit_code')}"
    if status == "error":
        return f"{info.get('exc_type')} (exit {info.get('exit_code')})"
    return status


def _counts(info):
    text = f"{info.get('stored', 0)} events stored"
    if info.get("missing"):
        text += f", {info['missing']} missing: the run is incomplete"
    return text

