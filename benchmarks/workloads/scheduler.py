"""An object-heavy simulation: a small cooperative task scheduler passing packets between tasks.

Loosely in the spirit of the classic Richards benchmark, written from scratch:
an idle task injects packets into workers, workers fill them and hand them
to handlers, handlers pass them to devices, devices send them back to a
worker until a packet has made ROUNDS trips, then retire it.
"""

import sys

SIZE = 14000
ROUNDS = 4  # trips a packet makes through workers before it is retired


class Packet:
    __slots__ = ("link", "owner", "kind", "datum", "data")

    def __init__(self, owner, kind):
        self.link = None
        self.owner = owner
        self.kind = kind
        self.datum = 0
        self.data = [0] * 4

    def checksum(self):
        return sum(self.data) + self.datum * 7 + self.kind


class Task:
    """A task holds a queue of packets and runs when it has work and is not held."""

    def __init__(self, scheduler, ident, priority):
        self.scheduler = scheduler
        self.ident = ident
        self.priority = priority
        self.queue = []
        self.held = False
        self.runs = 0

    def ready(self):
        return not self.held and bool(self.queue)

    def receive(self, packet):
        packet.owner = self.ident
        self.queue.append(packet)

    def step(self):
        self.runs += 1
        self.run(self.queue.pop(0))

    def run(self, packet):
        raise NotImplementedError


class WorkerTask(Task):
    def __init__(self, scheduler, ident, priority, handlers):
        super().__init__(scheduler, ident, priority)
        self.handlers = handlers
        self.turn = 0
        self.letter = 0

    def run(self, packet):
        self.turn = (self.turn + 1) % len(self.handlers)
        for index in range(len(packet.data)):
            self.letter = (self.letter + 1) % 26
            packet.data[index] = self.letter
        packet.datum += 1
        self.scheduler.send(packet, self.handlers[self.turn])


class HandlerTask(Task):
    def __init__(self, scheduler, ident, priority, device):
        super().__init__(scheduler, ident, priority)
        self.device = device
        self.handled = 0

    def run(self, packet):
        self.handled += packet.checksum() % 97
        packet.kind = (packet.kind + 1) % 3
        self.scheduler.send(packet, self.device)


class DeviceTask(Task):
    def __init__(self, scheduler, ident, priority, home):
        super().__init__(scheduler, ident, priority)
        self.home = home
        self.sent = 0

    def run(self, packet):
        self.sent += 1
        if packet.datum < ROUNDS:
            self.scheduler.send(packet, self.home[packet.datum % len(self.home)])
        else:
            self.scheduler.retired += 1


class IdleTask(Task):
    """Keeps the system going: every step it injects a fresh packet into a worker."""

    def __init__(self, scheduler, ident, priority, workers, budget):
        super().__init__(scheduler, ident, priority)
        self.workers = workers
        self.budget = budget
        self.seed = 1

    def ready(self):
        return self.budget > 0

    def step(self):
        self.runs += 1
        self.budget -= 1
        self.seed = (self.seed * 75 + 74) % 65537
        target = self.workers[self.seed % len(self.workers)]
        self.scheduler.send(Packet(self.ident, self.seed % 3), target)


class Scheduler:
    def __init__(self):
        self.tasks = {}
        self.order = []
        self.sends = 0
        self.retired = 0

    def add(self, task):
        self.tasks[task.ident] = task
        self.order = sorted(self.tasks.values(), key=lambda t: -t.priority)

    def send(self, packet, ident):
        self.sends += 1
        self.tasks[ident].receive(packet)

    def pick(self):
        for task in self.order:
            if task.ready():
                return task
        return None

    def run(self, limit):
        steps = 0
        while steps < limit:
            task = self.pick()
            if task is None:
                break
            task.step()
            steps += 1
        return steps


def build(size):
    scheduler = Scheduler()
    devices = [10, 11]
    handlers = [20, 21]
    workers = [30, 31, 32]
    for ident in devices:
        scheduler.add(DeviceTask(scheduler, ident, 5000, workers))
    for ident, device in zip(handlers, devices):
        scheduler.add(HandlerTask(scheduler, ident, 3000, device))
    for ident in workers:
        scheduler.add(WorkerTask(scheduler, ident, 2000, handlers))
    scheduler.add(IdleTask(scheduler, 1, 0, workers, size))
    return scheduler


def main(size):
    scheduler = build(size)
    steps = scheduler.run(size * 50)
    handled = sum(t.handled for t in scheduler.tasks.values() if isinstance(t, HandlerTask))
    print(f"scheduler checksum {steps} {scheduler.sends} {scheduler.retired} {handled}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else SIZE)
