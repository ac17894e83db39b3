"""A whole-video run started from the page: the CLI's chain in a thread, with progress and cancel.

Cancel raises `Cancelled` (a KeyboardInterrupt, like Ctrl-C) from the run's progress callback,
so the chain's own abort path removes every hidden partial output: nothing half-written stays.
One run at a time; starting another while one is going is refused.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

from chain import api
from chain.engine.summary import frames_per_second
from chain.errors import ChainError, error_line
from chain.media.outputs import Outputs
from chain.ui.settings import Settings


class Cancelled(KeyboardInterrupt):
    """The page's Cancel button: unwinds the run the way Ctrl-C does."""


@dataclass(frozen=True)
class RunState:
    """A snapshot of the current (or last) run."""

    status: str = "idle"  # idle, starting, running, done, cancelled, failed
    done: int = 0
    total: int | None = None
    frames_per_second: float | None = None
    eta_seconds: float | None = None
    message: str = ""
    command: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: dict | None = None

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running")


class _Progress:
    """`chain.engine.pipeline.Progress` that records frames for the page and stops the run on cancel."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._started = 0.0

    def start(self, total: int | None, description: str) -> None:
        self._runner._check_cancel()
        self._started = time.perf_counter()
        self._runner._update(status="running", total=total, done=0, message="")

    def advance(self, frames: int) -> None:
        state = self._runner.state()
        done = state.done + frames
        rate = frames_per_second(done, time.perf_counter() - self._started) or None  # so far
        eta = (state.total - done) / rate if rate and state.total else None
        self._runner._update(done=done, frames_per_second=rate, eta_seconds=eta)
        self._runner._check_cancel()

    def stop(self) -> None:
        pass


class Runner:
    """Runs `chain.api.run` in a background thread, one run at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = RunState()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def state(self) -> RunState:
        with self._lock:
            return self._state

    def _update(self, **changes: object) -> None:
        with self._lock:
            self._state = replace(self._state, **changes)

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled")

    def start(self, settings: Settings, outputs: Outputs) -> RunState:
        """Start a run of ``settings`` into ``outputs``; a `ChainError` if one is going."""
        with self._lock:
            if self._state.active:
                raise ChainError("a run is already going: wait for it to finish or cancel it")
            self._cancel.clear()
            self._state = RunState(status="starting", message="loading the stages…",
                                   command=settings.command_line(outputs))
            self._thread = threading.Thread(target=self._run, args=(settings, outputs), name="chain-ui-run",
                                            daemon=True)
            self._thread.start()
            return self._state

    def cancel(self) -> RunState:
        """Ask the current run to stop; it removes its partial outputs and reports ``cancelled``."""
        with self._lock:
            if self._state.active:
                self._cancel.set()
                self._state = replace(self._state, message="cancelling…")
            return self._state

    def wait(self, timeout: float | None = None) -> RunState:
        """Block until the current run ends (or ``timeout`` seconds pass); returns the state."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.state()

    def _run(self, settings: Settings, outputs: Outputs) -> None:
        given = {name: str(path) for name, path in outputs.given().items()}
        try:
            summary = api.run(settings.run_config(outputs), progress=_Progress(self))
        except Cancelled:
            self._update(status="cancelled", message="cancelled; no partial output was left (outputs are moved "
                                                     "into place only when complete)")
        except BaseException as error:  # noqa: BLE001 — shown as the CLI's one line, never a traceback
            self._update(status="failed", message=error_line(error))
        else:
            report = summary.to_dict()
            written = {name: given[name] for name in summary.outputs if name in given}
            # The bar's frames/s becomes the run's own figure: one number on the page, as in the CLI.
            self._update(status="done", outputs=written, summary=report, done=summary.frames,
                         frames_per_second=summary.frames_per_second,
                         message=f"{summary.frames} frame{'' if summary.frames == 1 else 's'} at "
                                 f"{summary.width}x{summary.height}")
