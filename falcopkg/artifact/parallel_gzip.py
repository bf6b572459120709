"""A gzip writer that deflates fixed-size blocks on several threads, pigz-style.

The input stream is cut into blocks of BLOCK_SIZE bytes. Each block is raw-deflated on its
own (primed with the previous block's last 32 KiB as dictionary, so matches may reach back
across the cut) and ended with a sync flush, which byte-aligns it; the last block is
finished. The pieces concatenate into ONE deflate stream inside ONE gzip member (some
readers stop after the first member of a multi-member file), with the CRC-32 and size of
the whole input in the trailer.

The bytes depend only on the input, the level and the zlib build: block cuts are at fixed
offsets, every block is compressed the same way whatever thread runs it, and pieces are
written in input order. The thread count changes only the speed. zlib releases the GIL
while it deflates, so threads give real parallelism.

Blocks that do not compress (random data, already-compressed files) are stored instead of
deflated: a quick probe of a few samples skips the full deflate of such blocks, and a
deflated block that did not shrink enough is replaced by its stored form.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

# A constant, never derived from the thread count: the cuts decide the output bytes.
BLOCK_SIZE = 512 * 1024
DEFAULT_LEVEL = 6  # Go's and gzip's default
WINDOW = 32 * 1024  # deflate's window: how far back a dictionary can help
# A deflated block is kept only if it saves at least 1/STORE_MARGIN of its size.
STORE_MARGIN = 64
# Incompressibility probe: SAMPLES pieces of SAMPLE_SIZE bytes, spread over the block, deflated
# at level 1; when together they save less than 1/STORE_MARGIN, the block is stored unprobed.
SAMPLES = 4
SAMPLE_SIZE = 4 * 1024
_STORED_MAX = 0xFFFF  # the most bytes one stored block holds


class ByteSink(Protocol):
    def write(self, data: bytes, /) -> int: ...


_MAGIC_METHOD_FLAGS_MTIME = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"  # deflate, no name, mtime 0
_OS_UNKNOWN = b"\xff"  # what Python's gzip module and Go's compress/gzip write


def default_threads() -> int:
    """The CPUs this process may run on (the affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def gzip_header(level: int) -> bytes:
    """The 10-byte header Python's GzipFile writes with filename="" and mtime=0."""
    extra_flags = b"\x02" if level == 9 else b"\x04" if level == 1 else b"\x00"
    return _MAGIC_METHOD_FLAGS_MTIME + extra_flags + _OS_UNKNOWN


def deflate_block(block: bytes, dictionary: bytes, level: int, *, last: bool) -> bytes:
    """``block`` as a byte-aligned piece of a raw deflate stream (the final one if ``last``).

    A pure function of its arguments: the same block gives the same bytes on any thread.
    """
    if level > 0 and not _looks_incompressible(block):
        deflated = _deflate(block, dictionary, level, last=last)
        if len(deflated) < len(block) - len(block) // STORE_MARGIN:
            return deflated
    return stored_blocks(block, last=last)


def stored_blocks(block: bytes, *, last: bool) -> bytes:
    """``block`` as deflate stored blocks (RFC 1951 3.2.4), starting on a byte boundary.

    Written here rather than by zlib level 0, which copies through its window and output
    buffers at a fraction of memory speed. Each block: a header byte (BFINAL bit, type 00,
    padding), LEN and its complement, then the bytes.
    """
    pieces = []
    starts = range(0, len(block), _STORED_MAX) if block else range(1)
    for start in starts:
        chunk = block[start : start + _STORED_MAX]
        final = last and start + _STORED_MAX >= len(block)
        pieces.append(struct.pack("<BHH", final, len(chunk), len(chunk) ^ 0xFFFF))
        pieces.append(chunk)
    return b"".join(pieces)


def _deflate(block: bytes, dictionary: bytes, level: int, *, last: bool) -> bytes:
    if dictionary:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=dictionary)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(block) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
    )


def _looks_incompressible(block: bytes) -> bool:
    if len(block) < SAMPLES * SAMPLE_SIZE * 4:
        return False  # small blocks: the full deflate is cheap, no need to guess
    stride = (len(block) - SAMPLE_SIZE) // (SAMPLES - 1)
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    deflated = 0
    for number in range(SAMPLES):
        start = number * stride
        deflated += len(compressor.compress(block[start : start + SAMPLE_SIZE]))
        deflated += len(compressor.flush(zlib.Z_FULL_FLUSH))
    sampled = SAMPLES * SAMPLE_SIZE
    return deflated >= sampled - sampled // STORE_MARGIN


class ParallelGzipWriter:
    """A write-only binary file object producing one gzip member in ``target``.

    With several threads, blocks are deflated on a pool and written to ``target`` in order by
    one writer thread (so reading the input, deflating and writing the output overlap). At
    most ``threads + 2`` blocks are in flight (each deflating, or waiting to be written), so
    memory stays bounded whatever the input size: about 1 MiB per thread. ``close()``
    finishes the stream; it does not close ``target``.
    """

    def __init__(
        self, target: ByteSink, *, level: int = DEFAULT_LEVEL, threads: int | None = None
    ) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"gzip level must be 0 to 9, not {level}")
        self._threads = threads if threads is not None else default_threads()
        if self._threads < 1:
            raise ValueError(f"threads must be at least 1, not {self._threads}")
        self._target = target
        self._level = level
        self._pending = bytearray()
        self._dictionary = b""
        self._crc = 0
        self._size = 0
        self._closed = False
        self._in_flight: deque[Future[None]] = deque()  # writes, in stream order
        self._pool: ThreadPoolExecutor | None = None
        self._writer: ThreadPoolExecutor | None = None
        if self._threads > 1:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="falcopkg-gzip")
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="falcopkg-gzip-write")
        target.write(gzip_header(level))

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed ParallelGzipWriter")
        view = memoryview(data).cast("B")
        self._pending += view
        self._crc = zlib.crc32(view, self._crc)
        self._size += len(view)
        # Keep the tail back: the last block must be deflated with Z_FINISH at close().
        while len(self._pending) > BLOCK_SIZE:
            block = bytes(self._pending[:BLOCK_SIZE])
            del self._pending[:BLOCK_SIZE]
            self._submit(block, last=False)
        return len(view)

    def tell(self) -> int:
        """Bytes written so far (uncompressed, as GzipFile counts)."""
        return self._size

    def flush(self) -> None:
        """Nothing to do before close(): blocks are cut at fixed offsets, never on flush."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(bytes(self._pending), last=True)
            self._pending = bytearray()
            while self._in_flight:
                self._in_flight.popleft().result()
            self._target.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Stop the workers without finishing the stream (the output is left incomplete)."""
        self._closed = True
        for future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        for pool in (self._pool, self._writer):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._writer = None

    def __enter__(self) -> ParallelGzipWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()

    def _submit(self, block: bytes, *, last: bool) -> None:
        dictionary = self._dictionary
        self._dictionary = block[-WINDOW:]
        if self._pool is None or self._writer is None:
            self._target.write(deflate_block(block, dictionary, self._level, last=last))
            return
        if len(self._in_flight) >= self._threads + 2:
            self._in_flight.popleft().result()  # also raises what a worker or the writer raised
        deflated = self._pool.submit(deflate_block, block, dictionary, self._level, last=last)
        self._in_flight.append(self._writer.submit(self._write_when_done, deflated))

    def _write_when_done(self, deflated: Future[bytes]) -> None:
        self._target.write(deflated.result())
