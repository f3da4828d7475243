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
) -> Iterator[str]:
    """Serve the champions of the registry at `tracking_uri` on 127.0.0.1; yields the base URL.
    `environment` adds to (or overrides) this process's variables: API keys, flag store, cache.
    `service` is what `bentoml serve` serves: the service's import path, or a built Bento's tag."""
    port = port or free_port()
    environment = {**os.environ, **(environment or {}), "MLFLOW_TRACKING_URI": tracking_uri}
    if bentoml_home is not None:
        environment["BENTOML_HOME"] = str(bentoml_home)
    command = [sys.executable, "-m", "bentoml", "serve", service, "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(server, base_url, log, timeout_s)
        yield base_url
    finally:
        _stop(server)


def _wait_until_ready(server: subprocess.Popen[bytes], base_url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServiceFailedToStart(f"bentoml serve exited with {server.returncode}:\n{_tail(log)}")
        if STARTUP_FAILED in log.read_text(errors="replace"):
            # BentoML's arbiter would restart the refusing worker forever; the refusal is the answer
            raise ServiceFailedToStart(f"the service refused to start:\n{_tail(log)}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise ServiceFailedToStart(f"the service was not ready after {timeout_s:.0f} s:\n{_tail(log)}")


def _stop(server: subprocess.Popen[bytes]) -> None:
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
