"""How events travel: a codec for batches, the tracer's publisher, the monitor's listener."""

import re

from smiley_like.errors import UsageError

_ENDPOINT = re.compile(r"(tcp://[^\s/]+:(\d+|\*)|ipc://\S+)")


def check_endpoint(url):
    """Raise UsageError unless *url* is a monitor address: tcp://HOST:PORT or ipc://PATH."""
    if not _ENDPOINT.fullmatch(url or ""):
        raise UsageError(f"not a monitor address: '{url}' (give tcp://HOST:PORT or "
                         "ipc://PATH)")
