"""Start a real `bentoml serve` of the service on loopback, wait until it is ready, always stop it.

Used by `povrisk demo`, the HTTP tests and the benchmarks, so that each of them runs the same server a
county would run, not an in-process stand-in.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

SERVICE = "serving.service:PovertyRiskService"
STARTUP_FAILED = "Application startup failed"
"""What a BentoML worker logs when the service's start-up raised (no keys, no champion, ...)."""


class ServiceFailedToStart(RuntimeError):
    """The server exited or did not become ready; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_service(
    *,
    tracking_uri: str,
    log: Path,
    port: int | None = None,
    bentoml_home: Path | None = None,
    timeout_s: float = 120.0,
    environment: Mapping[str, str] | None = None,
    service: str = SERVICE,
    working_dir: Path | None = None,
) -> Iterator[str]:
    """Serve the champions of the registry at `tracking_uri` on 127.0.0.1; yields the base URL.
    `environment` adds to (or overrides) this process's variables: API keys, flag store, cache.
    `service` is what `bentoml serve` serves: the service's import path (found in `working_dir`, default
    the current folder), or a built Bento's tag."""
    server, base_url = start_service(
        tracking_uri=tracking_uri,
        log=log,
        port=port,
        bentoml_home=bentoml_home,
        environment=environment,
        service=service,
        working_dir=working_dir,
    )
    try:
        wait_until_ready(server, f"{base_url}/readyz", log, timeout_s)
        yield base_url
    finally:
        stop_server(server)


def start_service(
    *,
    tracking_uri: str,
    log: Path,
    port: int | None = None,
    bentoml_home: Path | None = None,
    environment: Mapping[str, str] | None = None,
    service: str = SERVICE,
    working_dir: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `bentoml serve` (as `running_service` does) without waiting; the server (leader of its own
    process group) and its base URL. The caller stops it (`stop_server`)."""
    port = port or free_port()
    environment = {**os.environ, **(environment or {}), "MLFLOW_TRACKING_URI": tracking_uri}
    if bentoml_home is not None:
        environment["BENTOML_HOME"] = str(bentoml_home)
    command = [sys.executable, "-m", "bentoml", "serve", service, "--host", "127.0.0.1", "--port", str(port)]
    if working_dir is not None:
        command += ["--working-dir", str(working_dir)]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    return server, f"http://127.0.0.1:{port}"


def wait_until_ready(server: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float) -> None:
    """Poll `url` until it answers 200; `ServiceFailedToStart` with the end of `log` when the server
    exits, a BentoML worker logs that its start-up failed, or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    watch = _LogWatch(log, STARTUP_FAILED)
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServiceFailedToStart(
                f"{url}: the service refused to start (the server exited with {server.returncode}):\n"
                + _tail(log)
            )
        if watch.seen():
            # BentoML's arbiter would restart the refusing worker forever; the refusal is the answer
            raise ServiceFailedToStart(f"the service refused to start:\n{_tail(log)}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise ServiceFailedToStart(f"{url} was not ready after {timeout_s:.0f} s:\n{_tail(log)}")


class _LogWatch:
    """Whether a line has appeared in a growing log, reading only what was added since the last look."""

    def __init__(self, log: Path, marker: str) -> None:
        self._log, self._marker = log, marker.encode()
        self._offset, self._carry = 0, b""

    def seen(self) -> bool:
        with self._log.open("rb") as handle:
            handle.seek(self._offset)
            added = handle.read()
        self._offset += len(added)
        text = self._carry + added
        self._carry = text[-(len(self._marker) - 1) :]  # a marker split across two looks
        return self._marker in text


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers (its own process group), politely first."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
