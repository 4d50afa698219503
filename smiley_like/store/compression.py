"""How a chunk's events are compressed: Zstandard, level 1.

zlib at its fastest level took 127 ns per event on the benchmark's deep
recursion (4.6 bytes per event), more than the writer had to spare; Zstandard
level 1 takes 31 ns there and stores 3.3 bytes per event.  Databases written
before schema 3 hold zlib streams; a Zstandard frame starts with its magic
number, which no zlib stream does, so both are read.
"""

import zlib

import zstandard

LEVEL = 1
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
