"""Decoding ahead of the networks and writing behind them, each in its own thread.

A run has three lanes: a decoder thread fills a bounded queue with batches (`Lanes.ahead`), the
calling thread runs the networks, and a writer thread takes what comes after them (rendering the
inspection views, every sink's writes, summary lines) from a second bounded queue
(`Lanes.behind`). FFmpeg, torch, zlib and swscale release the GIL, so on a machine with spare
cores the networks stop waiting for decode and encode, while the queues keep memory bounded: at
most ``depth`` batches wait in each.

A failure in any lane ends the run: the decoder's error is raised where the calling thread takes
its next batch, the writer's at the next hand-over (or at `Lanes.finish`), and the calling
thread's own error (Ctrl-C and stop signals arrive there only) unwinds through the caller, which
calls `Lanes.stop` before it aborts the outputs, so no thread still writes to a sink that is
being removed. ``overlap=False`` runs everything in the calling thread, in the same order: the
serial loop, for comparison and for tests.

The writer reads a batch's frames and the networks' results while the networks already work on
the next batch: stages return new arrays for every batch (none reuses a buffer it returned).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: Batches waiting in each queue. Two keep a lane busy while the next batch is handed over; more
#: only cost memory (frames of a 4K film are 25 MB each).
DEFAULT_DEPTH = 2
#: How often a blocked lane looks whether the run was stopped, in seconds: a short wait keeps Ctrl-C
#: prompt, and waiting with a timeout leaves the calling thread interruptible by signals.
_POLL_SECONDS = 0.05

_END = object()  # the decoder has no more batches / the writer has no more jobs


class Lanes:
    """The decoder and writer threads of one run (or, with ``overlap=False``, none).

    Use as: ``for item in lanes.ahead(items): ...; lanes.behind(job, ...)``, then `finish` once
    every batch was handed over, or `stop` (never raises) when the run fails.
    """

    def __init__(self, *, overlap: bool = True, depth: int = DEFAULT_DEPTH) -> None:
        if depth < 1:
            raise ValueError(f"queue depth must be >= 1, got {depth}")
        self.overlap = overlap
        self.depth = depth
        self._stopped = threading.Event()
        self._failure: BaseException | None = None  # the writer's, until raised in the calling thread
        self._threads: list[threading.Thread] = []
        self._jobs: queue.Queue[Any] | None = None

    # -- ahead: the decoder thread --------------------------------------------------------------

    def ahead(self, items: Iterator[T]) -> Iterator[T]:
        """``items``, produced by a thread up to ``depth`` ahead of the consumer; its errors are
        raised here, in order, after the items before them."""
        if not self.overlap:
            return items
        ready: queue.Queue[tuple[object, Any]] = queue.Queue(self.depth)
        self._start(self._produce, (items, ready), "chain-decode")
        return self._consume(ready)

    def _produce(self, items: Iterator[T], ready: queue.Queue[tuple[object, Any]]) -> None:
        try:
            for item in items:
                if not self._put(ready, (None, item)):
                    break
            else:
                self._put(ready, (_END, None))
        except BaseException as error:  # handed to the consumer, which raises it as its own
            self._put(ready, (_END, error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator stopped early is closed in the thread that ran it

    def _consume(self, ready: queue.Queue[tuple[object, Any]]) -> Iterator[T]:
        while True:
            marker, value = self._get(ready)
            if marker is _END:
                if value is not None:
                    raise value
                return
            yield value

    def _get(self, source: queue.Queue[Any]) -> Any:
        while True:
            self._raise_failure()  # the writer failed: stop taking batches
            try:
                return source.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue

    # -- behind: the writer thread --------------------------------------------------------------

    def behind(self, job: Callable[..., Any], *args: Any) -> None:
        """Run ``job(*args)`` after every job handed over before it, in the writer thread.

        Blocks while ``depth`` jobs wait; raises the writer's error if it has failed.
        """
        if not self.overlap:
            job(*args)
            return
        if self._jobs is None:
            self._jobs = queue.Queue(self.depth)
            self._start(self._write, (self._jobs,), "chain-write")
        self._raise_failure()
        self._put(self._jobs, (job, args), check=True)  # False only once the run stops: nothing more is written

    def _write(self, jobs: queue.Queue[Any]) -> None:
        while not self._stopped.is_set():
            try:
                item = jobs.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if item is _END:
                return
            job, args = item
            try:
                job(*args)
            except BaseException as error:  # raised in the calling thread at its next hand-over
                self._failure = error
                return

    # -- the end of a run ------------------------------------------------------------------------

    def finish(self) -> None:
        """Wait until every job handed over is done; raise a lane's error if there was one."""
        if self._jobs is not None:
            self._put(self._jobs, _END, check=True)
        for thread in self._threads:
            while thread.is_alive():
                thread.join(_POLL_SECONDS)
                self._raise_failure()
        self._raise_failure()

    def stop(self) -> None:
        """End both threads now, dropping what waits in the queues, and wait for them (the decoder
        notices once it has read the batch it is reading, the writer once its job is done). Never
        raises: the run's own error counts."""
        self._stopped.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    # -- helpers ---------------------------------------------------------------------------------

    def _start(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> None:
        # Daemon threads: a lane stuck in a C call must not keep the process alive after an error.
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _put(self, target: queue.Queue[Any], item: Any, *, check: bool = False) -> bool:
        """Put ``item`` unless the run stops first (False); ``check``: the caller is the calling
        thread, which raises the writer's error rather than wait on a queue nobody empties."""
        while not self._stopped.is_set():
            if check:
                self._raise_failure()
            try:
                target.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            self._stopped.set()  # nothing more is written once a write failed
            raise failure
