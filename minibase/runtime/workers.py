"""``minibase serve --workers N``: a supervisor process and N forked workers.

The supervisor binds the listening socket once and forks the workers, which all accept on
that one socket (a pre-forked shared socket rather than SO_REUSEPORT: a worker that dies
or restarts leaves no queue of its own whose waiting connections would be reset, and it
works wherever ``fork`` does). The app is built once in the supervisor before forking and
never started there: each worker runs its lifespan (opening its own database connections)
after the fork. Everything the workers share lives in the database.

The supervisor restarts a worker that dies (with a growing delay when workers keep dying
soon after they start), stops everything when a worker fails its start-up (uvicorn's
exit status 3: a database that cannot be opened will not open on a retry either), and on
SIGTERM, SIGINT or SIGHUP sends every worker SIGTERM: each stops accepting, lets its
in-flight requests finish (at most ``graceful_timeout`` seconds), runs its shutdown and
exits. Workers die with the supervisor (Linux: ``PR_SET_PDEATHSIG``), so a killed
supervisor leaves no worker holding the port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable

__all__ = ["STARTUP_FAILURE", "Supervisor", "default_workers"]

log = logging.getLogger("minibase.serve")

STARTUP_FAILURE = 3  # uvicorn's exit status when the app's lifespan start-up fails
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_QUICK_DEATH = 5.0  # seconds: a worker dying sooner than this after its start backs off
_MAX_DELAY = 5.0  # seconds: the longest wait before restarting a worker


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)


class Supervisor:
    """Runs ``worker()`` (returning an exit status) in ``count`` forked processes."""

    def __init__(
        self,
        worker: Callable[[], int],
        count: int,
        *,
        graceful_timeout: float,
        on_stop: Callable[[], None] = lambda: None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.worker = worker
        self.on_stop = on_stop  # e.g. close the supervisor's copy of the listening socket
        self.count = count
        self.graceful_timeout = graceful_timeout
        self.children: dict[int, float] = {}  # pid -> monotonic start time
        self._delay = 0.0  # the current restart delay
        self._restarts: list[float] = []  # when the pending restarts are due
        self._stopping = False
        self._deadline = 0.0  # when workers still running at shutdown are killed
        self._status = 0

    def run(self) -> int:
        """Serve until a stop signal or a failed start-up; the exit status (0: clean stop)."""
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        wanted = (*_STOP_SIGNALS, signal.SIGCHLD)
        previous = {sig: signal.signal(sig, _noop) for sig in wanted}
        old_wakeup = signal.set_wakeup_fd(wfd)
        try:
            for _ in range(self.count):
                self._spawn(rfd, wfd)
            log.info("%d workers started (pids %s)", self.count, sorted(self.children))
            while self.children or (self._restarts and not self._stopping):
                ready = select.select([rfd], [], [], self._timeout())[0]
                signals = _drain(rfd) if ready else b""
                if not self._stopping and any(sig in signals for sig in _STOP_SIGNALS):
                    log.info("stopping %d workers", len(self.children))
                    self._stop()
                self._reap()
                now = time.monotonic()
                if self._stopping and now >= self._deadline:
                    self._kill_all()
                    self._deadline = now + 5.0
                while self._restarts and self._restarts[0] <= now and not self._stopping:
                    self._restarts.pop(0)
                    pid = self._spawn(rfd, wfd)
                    log.warning("started worker %d in place of the one that died", pid)
            return self._status
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(rfd)
            os.close(wfd)

    def _timeout(self) -> float | None:
        now = time.monotonic()
        if self._stopping:
            return max(0.0, self._deadline - now)
        if self._restarts:
            return max(0.0, self._restarts[0] - now)
        return None

    def _spawn(self, rfd: int, wfd: int) -> int:
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                signal.set_wakeup_fd(-1)
                os.close(rfd)
                os.close(wfd)
                for sig in (*_STOP_SIGNALS, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                _die_with_parent(parent)
                status = self.worker()
            except SystemExit as e:
                status = e.code if isinstance(e.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        self.children[pid] = time.monotonic()
        return pid

    def _reap(self) -> None:
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            started = self.children.pop(pid, None)
            if started is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if self._stopping:
                continue
            how = f"signal {-code}" if code < 0 else f"status {code}"
            if code == STARTUP_FAILURE:
                log.error("worker %d failed to start (%s); stopping", pid, how)
                self._status = 1
                self._stop()
                continue
            lived = time.monotonic() - started
            self._delay = min(_MAX_DELAY, max(0.1, self._delay * 2)) if lived < _QUICK_DEATH else 0.0
            log.warning("worker %d died (%s); restarting it in %.1f s", pid, how, self._delay)
            self._restarts.append(time.monotonic() + self._delay)
            self._restarts.sort()

    def _stop(self) -> None:
        self._stopping = True
        self._restarts.clear()
        self._deadline = time.monotonic() + self.graceful_timeout + 5.0
        # The listening socket closes for good once every worker has closed its copy too:
        # new connections are refused rather than left waiting in a backlog nobody reads.
        self.on_stop()
        for pid in self.children:
            _signal(pid, signal.SIGTERM)

    def _kill_all(self) -> None:
        for pid in self.children:
            log.error("worker %d did not stop in time; killing it", pid)
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited, not yet reaped
        os.kill(pid, sig)


def _noop(sig: int, frame: object) -> None:
    """A Python-level handler, so the wakeup fd receives the signal's number."""


def _drain(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 512)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk
