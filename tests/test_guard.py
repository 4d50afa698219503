"""The guard test: what a sink sees live equals what the store gives back after the wire."""

import subprocess
import sys
import threading

from smiley_like.events import CALL, CHANGES, CODE, RETURN
from smiley_like.monitor import Monitor
from smiley_like.store import queries
from smiley_like.store.engine import open_store
from smiley_like.store.writer import StoreWriter
from smiley_like.wire.listener import Listener


class Collector:
    """A sink that keeps every event tuple it is given, by sequence number."""

    def __init__(self):
        self.events = {}
        self.ended = threading.Event()

    def start(self, message, info):
        self.info = info

    def batch(self, batch):
        for offset, event in enumerate(batch.events):
            self.events[batch.message.header["seq"] + offset] = event

    def end(self, message, info):
        self.end_info = info
        self.ended.set()


PROGRAM = """\
import threading

class Account:
    def __init__(self, owner):
        self.owner = owner
        self.history = []

    def deposit(self, amount):
        if amount <= 0:
            raise ValueError(f"bad amount {amount}")
        self.history.append(amount)
        return sum(self.history)

def work(account, amounts):
    for amount in amounts:
        try:
            account.deposit(amount)
        except ValueError:
            pass

account = Account("ada")
threads = [threading.Thread(target=work, args=(account, range(-2, 200)))
           for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(account.history))
"""


def test_live_events_equal_stored_events(tmp_path):
    database = str(tmp_path / "guard.db")
    store = open_store(database, create=True)
    listener = Listener(f"ipc://{tmp_path}/guard.sock")
    collector = Collector()
    writer = StoreWriter(store)
    monitor = Monitor(listener, [writer, collector])

    def serve():
        while not collector.ended.is_set():
            frames = listener.receive(100)
            if frames is not None:
                monitor.handle(frames)

    server = threading.Thread(target=serve)
    server.start()
    (tmp_path / "prog.py").write_text(PROGRAM)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "smiley_like", "run", "--remote", "--socket",
             listener.endpoint, "prog.py"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "398\n"
        assert collector.ended.wait(30)
    finally:
        collector.ended.set()
        server.join()
        listener.close()
        writer.close()
    try:
        run_id = queries.resolve_run(store, "last")
        stored = list(queries.events(store, run_id))
        assert queries.run(store, run_id).event_count == len(collector.events)
    finally:
        store.close()
    assert monitor.rejected == 0
    assert [e.seq for e in stored] == sorted(collector.events)
    for event in stored:
        live = collector.events[event.seq]
        assert (event.kind, event.thread_no, event.t_ns, event.line_no) == tuple(live[:4])
        assert event.value == live[4]
        if event.kind == CALL:
            assert event.code.code_id == live[CODE]
            assert event.call_id == event.seq
        if event.kind == RETURN:
            assert event.changes == live[CHANGES]
    # both threads are there, with exceptions and returns
    assert len({e.thread_no for e in stored}) == 3
    assert sum(1 for e in stored if e.kind == 3) >= 4
