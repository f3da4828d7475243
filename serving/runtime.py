"""How the service runs: how many worker processes, what its log says, and how a reload reaches every
worker.

BentoML starts `POVRISK_WORKERS` copies of the service (default 1); the kernel hands each new connection
to one of them. `POST /admin/reload` arrives at one worker only, so that worker, once it has loaded the
new champions, touches a signal file beside the local copy of the models; every worker watches the
file (one `stat` a second, in a background thread) and loads the champions too when it changes. Until
its new models are loaded a worker keeps answering with the old ones, so no request waits or fails.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

WORKERS_VARIABLE = "POVRISK_WORKERS"
"""Number of worker processes of the service (default 1; use the number of cores for throughput)."""
MAX_WORKERS = 64
RELOAD_SIGNAL_SUFFIX = ".reload-signal"
"""The signal file is the local copy's folder name plus this, beside that folder (not in it: saving a
new copy replaces the folder whole)."""
POLL_SECONDS = 1.0
"""How often each worker looks at the signal file."""


LOG_LEVEL_VARIABLE = "POVRISK_LOG_LEVEL"
"""Level of the service's own log lines (default INFO: start-up, reloads, one line per scoring request
naming households by their salted hash; WARNING keeps refusals and fallbacks only)."""
LOGGED_PACKAGES = ("serving", "monitoring", "models", "features", "training")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class RuntimeSettingError(ValueError):
    """`POVRISK_WORKERS` or `POVRISK_LOG_LEVEL` has a value the service cannot run with."""


def service_workers(environ: Mapping[str, str] = os.environ) -> int:
    """The number of worker processes `POVRISK_WORKERS` asks for (1 when unset)."""
    text = environ.get(WORKERS_VARIABLE, "").strip()
    if not text:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise RuntimeSettingError(
            f"{WORKERS_VARIABLE}={text!r}: expected a whole number of worker processes, 1 to {MAX_WORKERS}"
        )
    return int(text)


AUDIT_QUEUE_VARIABLE = "POVRISK_AUDIT_QUEUE"
"""How many audit records may wait in memory per worker before scoring requests get 503
(`monitoring.audit`; default `monitoring.audit.QUEUE_ROWS`)."""
MAX_AUDIT_QUEUE = 1_000_000


def audit_queue_capacity(environ: Mapping[str, str] = os.environ) -> int:
    """The audit queue's capacity `POVRISK_AUDIT_QUEUE` asks for."""
    from monitoring.audit import QUEUE_ROWS

    text = environ.get(AUDIT_QUEUE_VARIABLE, "").strip()
    if not text:
        return QUEUE_ROWS
    if not text.isdigit() or not 1 <= int(text) <= MAX_AUDIT_QUEUE:
        raise RuntimeSettingError(
            f"{AUDIT_QUEUE_VARIABLE}={text!r}: expected a whole number of records, 1 to {MAX_AUDIT_QUEUE:,}"
        )
    return int(text)


def reload_signal_path(cache: Path) -> Path:
    """Where the workers of a service whose local copy of the champions is `cache` meet."""
    return cache.with_name(cache.name + RELOAD_SIGNAL_SUFFIX)


def service_log_level(environ: Mapping[str, str] = os.environ) -> int:
    """The level `POVRISK_LOG_LEVEL` asks for (INFO when unset)."""
    text = environ.get(LOG_LEVEL_VARIABLE, "").strip().upper() or "INFO"
    if text not in LOG_LEVELS:
        raise RuntimeSettingError(f"{LOG_LEVEL_VARIABLE}={text!r}: expected one of {', '.join(LOG_LEVELS)}")
    return int(getattr(logging, text))


def configure_logging(level: int) -> None:
    """Let the service's own loggers through at `level` (BentoML's configuration passes only warnings of
    loggers it does not know; its handlers write the lines)."""
    for package in LOGGED_PACKAGES:
        logging.getLogger(package).setLevel(level)


class ReloadSignal:
    """The signal file one worker touches after a reload and every worker watches."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns

    def announce(self) -> None:
        """Tell the other workers to reload (this one has): a new file replaces the old one atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        staged.write_text(f"{uuid.uuid4().hex} {os.getpid()}\n", encoding="utf-8")
        staged.replace(self.path)
        self._seen = self._stamp()

    def changed(self) -> bool:
        """Whether another worker announced a reload since this one last looked (or announced)."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        return stamp is not None


class ReloadWatcher:
    """A daemon thread that calls `reload` whenever the signal changes, until `stop`."""

    def __init__(self, signal: ReloadSignal, reload: Callable[[], None], poll_seconds: float = POLL_SECONDS):
        self._signal = signal
        self._reload = reload
        self._poll_seconds = poll_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="povrisk-reload-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self._poll_seconds):
            if not self._signal.changed():
                continue
            try:
                self._reload()
            except Exception:  # keep serving the models already loaded, and keep watching
                logger.exception(
                    "worker %d: reloading after another worker's /admin/reload failed", os.getpid()
                )


ORPHAN_GRACE_SECONDS = 15.0
"""How long an orphaned worker's graceful stop (audit trail written) may take before it exits anyway."""


class ParentWatchdog:
    """Stops this worker when the server process that started it dies (kill -9 of `bentoml serve`):
    otherwise the worker keeps the listening socket and serves on as an orphan, and a restart fails with
    "Address already in use". A daemon thread compares the parent pid once a second; when the parent is
    gone it logs, asks this process to stop as the server would (SIGTERM: BentoML's shutdown hooks run,
    the audit trail is written) and exits for good after `ORPHAN_GRACE_SECONDS`."""

    def __init__(self, poll_seconds: float = POLL_SECONDS, grace_seconds: float = ORPHAN_GRACE_SECONDS):
        self._parent = os.getppid()
        self._poll_seconds = poll_seconds
        self._grace_seconds = grace_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="povrisk-parent-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._poll_seconds):
            if os.getppid() == self._parent:
                continue
            logger.warning(
                "worker %d: the server process %d is gone; stopping this worker", os.getpid(), self._parent
            )
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(self._grace_seconds)  # a normal stop ends the process (and this thread) first
            logger.error(
                "worker %d did not stop within %.0f s of SIGTERM; exiting", os.getpid(), self._grace_seconds
            )
            os._exit(1)
