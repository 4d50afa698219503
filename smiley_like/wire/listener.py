"""The monitor's end of the wire: a bound PULL socket."""

import errno

import zmq

from smiley_like.errors import WireError

DEFAULT_HWM = 64
#: Largest message taken: far above a real batch (65,536 events of bounded
#: text), so a stray sender cannot make the monitor allocate without limit.
MAX_MESSAGE = 512 * 1024 * 1024


class Listener:
    """Binds a PULL socket at *endpoint*; many tracers connect to it."""

    def __init__(self, endpoint, hwm=DEFAULT_HWM):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PULL)
        # Options before bind: they do not apply to connections made earlier.
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        self.socket.setsockopt(zmq.LINGER, 0)
        try:
            self.socket.bind(endpoint)
        except zmq.ZMQError as error:
            self.close()
            if error.errno == errno.EADDRINUSE:
                raise WireError(f"cannot listen on {endpoint}: address in use "
                                "(is another monitor running?)") from error
            raise WireError(f"cannot listen on {endpoint}: {error}") from error
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def receive(self, timeout_ms):
        """Return the frames of the next message, or None after *timeout_ms*."""
        if self.socket.poll(timeout_ms, zmq.POLLIN):
            return self.socket.recv_multipart(copy=True)
        return None

    def close(self):
        if not self.context.closed:
            self.socket.close(linger=0)
            self.context.term()
