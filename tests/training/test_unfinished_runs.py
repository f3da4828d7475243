"""Runs left RUNNING by a killed povrisk process: ended by the next command that opens the store and by
`povrisk doctor`; runs whose owner lives, runs of another host and runs without owner tags left alone.

The killed processes are real: a subprocess starts a povrisk run through the real code path, blocks,
and gets SIGKILL."""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from cli.main import app
from training import tracking
from training.unfinished_runs import (
    ENDED_AT,
    ENDED_BECAUSE,
    Owner,
    Verdict,
    judge,
    process_start,
    this_process,
)

REPOSITORY = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()
STARTUP_SECONDS = 180  # importing MLflow and LightGBM on a busy 2-core machine

# log_and_register, blocked (then killed) while the logged model's files are being uploaded.
KILLED_WHILE_LOGGING_THE_MODEL = """
import pickle, sys, time
import mlflow
from training import tracking

def blocked(self, model_id, *args, **kwargs):
    print(mlflow.active_run().info.run_id, model_id, flush=True)
    time.sleep(600)

mlflow.MlflowClient.log_model_artifacts = blocked
with open(sys.argv[1], "rb") as file:
    trained = pickle.load(file)
tracking.log_and_register(trained)
"""

# log_drift, blocked right after it created its run.
BLOCKED_AFTER_STARTING_A_DRIFT_RUN = """
import time
from mlflow import MlflowClient
from training import tracking

def blocked(self, run_id, *args, **kwargs):
    print(run_id, flush=True)
    time.sleep(600)

MlflowClient.log_batch = blocked
tracking.log_drift("poverty", {}, {"psi": 0.1}, reference_run_id="0" * 32)
"""

runner = CliRunner()


class Owned:
    """A subprocess that started a povrisk run and blocks: its run id (and more), its pid."""

    def __init__(self, process: subprocess.Popen[str], printed: list[str]) -> None:
        self.process = process
        self.printed = printed
        self.run_id = printed[0]

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)  # reaped: its pid is gone


@pytest.fixture
def start_owner(tmp_path: Path) -> Iterator:
    """start_owner(script, *arguments) -> Owned, once the subprocess printed its run id."""
    started: list[subprocess.Popen[str]] = []

    def start(script: str, *arguments: str) -> Owned:
        environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
        process = subprocess.Popen(
            [sys.executable, "-c", script, *arguments],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_SECONDS)
        line = process.stdout.readline() if ready else ""
        if not line:
            process.kill()
            _, errors = process.communicate(timeout=30)
            pytest.fail(f"the run owner never started its run:\n{errors[-3000:]}")
        return Owned(process, line.split())

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def client() -> MlflowClient:
    return MlflowClient(tracking_uri=tracking.tracking_uri())


def experiment_id() -> str:
    experiment = client().get_experiment_by_name(tracking.EXPERIMENT_NAME)
    assert experiment is not None
    return str(experiment.experiment_id)


def doctor(*arguments: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["doctor", *arguments])
    return result.exit_code, result.output.splitlines()


def said(lines: list[str]) -> str:
    """Everything printed as one line (the console wraps long lines on stderr)."""
    return " ".join(" ".join(lines).split())


def line_of(run_id: str, lines: list[str]) -> str:
    (found,) = [line for line in lines if run_id in line]
    return found


@pytest.mark.integration
def test_a_training_run_killed_while_logging_its_model_is_ended_by_the_next_command(
    tmp_path, trained, policy, start_owner, monkeypatch, capfd
):
    with (tmp_path / "trained.pkl").open("wb") as file:
        pickle.dump(trained["poverty"], file)
    owner = start_owner(KILLED_WHILE_LOGGING_THE_MODEL, str(tmp_path / "trained.pkl"))
    run_id, model_id = owner.printed
    owner.kill()
    store = client()
    assert store.get_run(run_id).info.status == "RUNNING", "what the issue saw: RUNNING forever"
    assert store.get_logged_model(model_id).status == LoggedModelStatus.PENDING
    capfd.readouterr()

    monkeypatch.setattr(tracking, "_SWEPT_STORES", set())
    assert tracking.champion_run_id("poverty") is None  # any command that opens the store

    printed = capfd.readouterr().err
    name = f"poverty-{trained['poverty'].model.data_hash}"
    assert f"ended MLflow run {run_id} ({name}): its process {owner.pid} on {HOST} died" in printed
    run = store.get_run(run_id)
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.data.tags[ENDED_BECAUSE] == f"its process {owner.pid} on {HOST} died"
    assert run.data.tags[ENDED_AT]
    assert store.get_logged_model(model_id).status == LoggedModelStatus.FAILED
    assert store.search_model_versions(f"name = '{tracking.registered_name('poverty')}'") == []

    tracking.champion_run_id("poverty")
    assert "ended MLflow run" not in capfd.readouterr().err, "once per process and store"


@pytest.mark.integration
def test_doctor_leaves_a_live_owners_run_alone_and_ends_it_once_killed(start_owner):
    owner = start_owner(BLOCKED_AFTER_STARTING_A_DRIFT_RUN)
    assert tracking.end_abandoned_runs(client()) == []
    code, lines = doctor()
    assert code == 0
    assert line_of(owner.run_id, lines).endswith(
        f"left alone: its process {owner.pid} on {HOST} is still running"
    )

    code, lines = doctor("--end-run", owner.run_id)
    assert code == 1
    assert "refused" in said(lines) and "still running" in said(lines)
    assert client().get_run(owner.run_id).info.status == "RUNNING"

    owner.kill()
    code, lines = doctor()
    assert code == 0
    line = line_of(owner.run_id, lines)
    assert "drift-poverty-vs-00000000" in line and f"owner process {owner.pid} on {HOST}" in line
    assert f"ended (marked FAILED): its process {owner.pid} on {HOST} died" in line
    assert client().get_run(owner.run_id).info.status == "FAILED"
    assert doctor() == (0, [f"no unfinished MLflow run in the store at {tracking.tracking_uri()}"])


@pytest.mark.integration
def test_runs_without_owner_or_of_another_host_are_listed_and_ended_only_by_hand(monkeypatch):
    tracking._experiment_id(tracking._client())
    store = client()
    unowned = store.create_run(experiment_id(), run_name="made-by-old-code").info.run_id
    elsewhere_owner = Owner("another-host", os.getpid(), "ticks:1", "boot", "pid:[1]")
    elsewhere = store.create_run(
        experiment_id(), run_name="on-another-host", tags=elsewhere_owner.tags()
    ).info.run_id

    assert tracking.end_abandoned_runs(store) == []
    code, lines = doctor()
    assert code == 0 and len(lines) == 2
    assert "owner not recorded: left alone: no owner recorded" in line_of(unowned, lines)
    assert f"left alone: its process {os.getpid()} on another-host is on another host" in line_of(
        elsewhere, lines
    )
    assert all("povrisk doctor --end-run" in line for line in lines)

    code, lines = doctor("--end-run", unowned, "--end-run", elsewhere)
    assert code == 0
    for run_id in (unowned, elsewhere):
        run = store.get_run(run_id)
        assert run.info.status == "FAILED"
        assert f"ended by hand with `povrisk doctor --end-run` on {HOST}" in run.data.tags[ENDED_BECAUSE]
        assert "ended (marked FAILED)" in line_of(run_id, lines)
    assert len(lines) == 2, "nothing left to list"

    code, lines = doctor("--end-run", unowned)
    assert code == 1 and "is not running (FAILED)" in said(lines)
    code, lines = doctor("--end-run", "0" * 32)
    assert code == 1 and "no MLflow run" in said(lines)


def test_a_store_that_cannot_be_searched_does_not_fail_the_command(monkeypatch, capfd):
    def unreachable(*arguments, **keywords):
        raise ConnectionError("the tracking server is down")

    monkeypatch.setattr(tracking, "_SWEPT_STORES", set())
    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", unreachable)
    assert isinstance(tracking._client(), MlflowClient)
    assert "ended" not in capfd.readouterr().err


def test_every_run_povrisk_starts_records_its_owner():
    drift_run = tracking.log_drift("poverty", {}, {"psi": 0.1}, reference_run_id="0" * 32)
    tags = client().get_run(drift_run).data.tags
    assert Owner.from_tags(tags) == this_process()
    assert (
        this_process().started
        == f"ticks:{Path('/proc/self/stat').read_text().rpartition(')')[2].split()[19]}"
    )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_owner_is_judged_dead_only_when_that_is_proven():
    here = this_process()
    same = Owner(here.host, here.pid, here.started, here.boot_id, here.pid_namespace)
    assert judge(same, here).verdict is Verdict.ALIVE
    reused = Owner(here.host, here.pid, "ticks:1", here.boot_id, here.pid_namespace)
    assert (
        judge(reused, here).reason
        == f"its process {here.pid} on {here.host} died (pid {here.pid} now belongs to another process)"
    )
    assert judge(Owner(here.host, 99_999_999, "ticks:1", here.boot_id), here).verdict is Verdict.DEAD
    rebooted = Owner(here.host, here.pid, here.started, "another-boot", here.pid_namespace)
    assert judge(rebooted, here).verdict is Verdict.DEAD
    container = Owner(here.host, 99_999_999, "ticks:1", here.boot_id, "pid:[1]")
    assert judge(container, here).verdict is Verdict.ELSEWHERE
    assert judge(Owner(here.host, here.pid), here).verdict is Verdict.UNKNOWN, "no start time recorded"
    assert judge(None, here).verdict is Verdict.UNOWNED


def test_an_exited_process_not_yet_reaped_is_dead():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while process_start(process.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_start(process.pid) is None, "a zombie does not run"
    assert Path(f"/proc/{process.pid}").exists(), "not reaped yet"
    process.wait()
