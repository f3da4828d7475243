"""A real Dask cluster for tests: a `dask scheduler` and `dask worker` processes over TCP on 127.0.0.1
(no nanny: a killed worker stays dead), stopped after."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def dask_processes(folder: Path, environment: dict[str, str], workers: int = 2) -> Iterator[dict[str, Any]]:
    """A scheduler and `workers` workers, each its own process, their output in FOLDER/cluster.log:
    yields the scheduler's `address`, the worker `Popen`s and the `log`'s path."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    log = (folder / "cluster.log").open("w")
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=environment,
        start_new_session=True,
    )
    started = [
        subprocess.Popen(
            [
                DASK,
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--name",
                f"worker-{number}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
        for number in range(workers)
    ]
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield {"address": address, "workers": started, "log": folder / "cluster.log"}
    finally:
        for process in [*started, scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*started, scheduler]:
            try:
                process.wait(timeout=5)  # nothing of theirs to keep: killed when slow
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()
