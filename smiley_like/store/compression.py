"""How a chunk's events are compressed: Zstandard, level -1.

zlib at its fastest level took 127 ns per event on the benchmark's deep
recursion (4.6 bytes per event), more than the writer had to spare.
Zstandard on the same chunks (16.9 bytes per event before): level 1 takes
40 ns per event for 4.1 bytes, level -1 (its first "fast" level) 23 ns for
4.3 bytes, and lower levels soon cost more bytes than they save time (-5:
20 ns, 6.2 bytes).  The writer has to keep up with programs that make
millions of events a second, and 40 bytes an event is the budget: level -1.  Databases written before schema 3 hold zlib
streams; a Zstandard frame starts with its magic number, which no zlib
stream does, so both are read.
"""

import zlib

import zstandard

LEVEL = -1
_MAGIC = b"\x28\xb5\x2f\xfd"


class Compressor:
    """Compresses chunks; one per thread (Zstandard contexts are not shared)."""

    def __init__(self):
        self._context = zstandard.ZstdCompressor(level=LEVEL)

    def compress(self, data):
        return self._context.compress(data)  # lets go of the GIL while it works


def decompress(blob):
    """The events of a chunk, as msgpack bytes."""
    if blob[:4] == _MAGIC:
        return zstandard.ZstdDecompressor().decompress(blob)
    return zlib.decompress(blob)
