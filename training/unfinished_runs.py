"""MLflow runs that never finished: who owns a run povrisk starts, and ending those whose owner died.

A process killed with SIGKILL (or a machine losing power) cannot end its run: MLflow shows it RUNNING
forever, and the model it was logging stays PENDING with part of its files. So every run povrisk starts
carries its owner as tags (`Owner.tags`): host name, pid, the process's start time (clock ticks after
boot, field 22 of `/proc/<pid>/stat`), the machine's boot id and the pid namespace. A later process on
the same host (and in the same container) can then prove the owner dead: the machine restarted since,
or no process has that pid, or the pid now belongs to a process started at another time (or a zombie).

Only runs whose owner is provably dead are ended automatically (status FAILED; tags `povrisk.ended_because`
and `povrisk.ended_at`; their pending logged models marked FAILED). A run of another host or container,
one without owner tags (started by older code or by hand), or one whose owner cannot be examined is
left alone and listed; an analyst who has checked it ends it with `end_run` (`povrisk doctor
--end-run`), which refuses a run whose owner on this host is still alive.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from mlflow.entities import LoggedModelStatus, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

OWNER_HOST = "povrisk.owner.host"
OWNER_PID = "povrisk.owner.pid"
OWNER_STARTED = "povrisk.owner.started"
OWNER_BOOT_ID = "povrisk.owner.boot_id"
OWNER_PID_NAMESPACE = "povrisk.owner.pid_namespace"
ENDED_BECAUSE = "povrisk.ended_because"
ENDED_AT = "povrisk.ended_at"
RUN_NAME = "mlflow.runName"
PROC = Path("/proc")
BOOT_ID_FILE = PROC / "sys" / "kernel" / "random" / "boot_id"
# States of /proc/<pid>/stat (field 3) of a process that has exited: zombie, dead.
EXITED_STATES = frozenset({"Z", "X", "x"})
MAX_UNFINISHED = 1000


class OwnerUnknown(Exception):
    """This machine cannot tell whether a process runs (no /proc, no psutil, access denied)."""


class RunNotEnded(Exception):
    """`end_run` refused: no such run, not running, not povrisk's, or its owner on this host is alive."""


@dataclass(frozen=True)
class Owner:
    """The process that started a run. `started` is a start-time token ("ticks:<n>" from /proc, or
    "epoch:<seconds>" from psutil elsewhere); the boot id and pid namespace are None where unknown."""

    host: str
    pid: int
    started: str | None = None
    boot_id: str | None = None
    pid_namespace: str | None = None

    def tags(self) -> dict[str, str]:
        values = {
            OWNER_HOST: self.host,
            OWNER_PID: str(self.pid),
            OWNER_STARTED: self.started,
            OWNER_BOOT_ID: self.boot_id,
            OWNER_PID_NAMESPACE: self.pid_namespace,
        }
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Owner | None:
        """The owner recorded in a run's tags; None for a run without (or with unreadable) owner tags."""
        if OWNER_HOST not in tags or not tags.get(OWNER_PID, "").isdigit():
            return None
        return cls(
            host=tags[OWNER_HOST],
            pid=int(tags[OWNER_PID]),
            started=tags.get(OWNER_STARTED),
            boot_id=tags.get(OWNER_BOOT_ID),
            pid_namespace=tags.get(OWNER_PID_NAMESPACE),
        )

    def __str__(self) -> str:
        return f"process {self.pid} on {self.host}"


def this_process() -> Owner:
    """The owner tags of a run this process starts."""
    pid = os.getpid()
    try:
        started = process_start(pid)
    except OwnerUnknown:
        started = None
    return Owner(socket.gethostname(), pid, started, _boot_id(), _pid_namespace())


def process_start(pid: int) -> str | None:
    """The start-time token of the running process `pid`; None when there is none (no such process, or
    one that has exited and not been reaped). Raises `OwnerUnknown` when this machine cannot tell."""
    if (PROC / "self" / "stat").exists():
        try:
            stat = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            return None
        except OSError as error:
            raise OwnerUnknown(f"cannot read /proc/{pid}/stat: {error}") from error
        # the command name (field 2) may hold spaces and parentheses: split after its closing one
        fields = stat.rpartition(")")[2].split()
        if len(fields) < 20:
            raise OwnerUnknown(f"/proc/{pid}/stat has an unexpected layout")
        state, start_ticks = fields[0], fields[19]
        return None if state in EXITED_STATES else f"ticks:{start_ticks}"
    return _psutil_process_start(pid)


def _psutil_process_start(pid: int) -> str | None:
    try:
        import psutil
    except ImportError as error:
        raise OwnerUnknown("neither /proc nor psutil is available") from error
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return f"epoch:{process.create_time():.3f}"
    except psutil.NoSuchProcess:
        return None
    except psutil.Error as error:
        raise OwnerUnknown(f"cannot examine process {pid}: {error}") from error


def _boot_id() -> str | None:
    try:
        return BOOT_ID_FILE.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink(PROC / "self" / "ns" / "pid")
    except OSError:
        return None


class Verdict(StrEnum):
    DEAD = "dead"  # provably: ended automatically
    ALIVE = "alive"  # its owner runs on this host: left alone, `end_run` refuses it
    ELSEWHERE = "elsewhere"  # another host or container: left alone
    UNOWNED = "unowned"  # no owner tags: left alone
    UNKNOWN = "unknown"  # this host, but whether its owner runs cannot be told: left alone


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str


def judge(owner: Owner | None, here: Owner) -> Judgement:
    """Whether the owner of an unfinished run is provably dead, seen from the process `here`."""
    if owner is None:
        return Judgement(Verdict.UNOWNED, "no owner recorded (started by older code or outside povrisk)")
    if owner.host != here.host:
        return Judgement(Verdict.ELSEWHERE, f"its {owner} is on another host")
    if owner.boot_id and here.boot_id and owner.boot_id != here.boot_id:
        return Judgement(Verdict.DEAD, f"its {owner} died (the machine restarted since)")
    if owner.pid_namespace and here.pid_namespace and owner.pid_namespace != here.pid_namespace:
        return Judgement(Verdict.ELSEWHERE, f"its {owner} is in another container")
    try:
        started = process_start(owner.pid)
    except OwnerUnknown as error:
        return Judgement(Verdict.UNKNOWN, f"whether its {owner} still runs cannot be told ({error})")
    if started is None:
        return Judgement(Verdict.DEAD, f"its {owner} died")
    comparable = owner.started is not None and owner.started.split(":")[0] == started.split(":")[0]
    if not comparable:
        return Judgement(
            Verdict.UNKNOWN,
            f"a process {owner.pid} runs on {owner.host}, but the run did not record when its owner "
            "started, so whether it is the owner cannot be told",
        )
    if started != owner.started:
        return Judgement(Verdict.DEAD, f"its {owner} died (pid {owner.pid} now belongs to another process)")
    return Judgement(Verdict.ALIVE, f"its {owner} is still running")


CHECK_THEN_END = "check that its owner no longer runs, then end it with `povrisk doctor --end-run RUN_ID`"


@dataclass(frozen=True)
class UnfinishedRun:
    """A RUNNING run, what was judged of its owner, and whether it has just been ended."""

    run_id: str
    name: str
    started_ms: int | None
    owner: Owner | None
    verdict: Verdict
    reason: str
    ended: bool = False

    def line(self) -> str:
        """One line for `povrisk doctor`."""
        started = (
            datetime.fromtimestamp(self.started_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if self.started_ms
            else "at an unknown time"
        )
        owner = str(self.owner) if self.owner is not None else "not recorded"
        if self.ended:
            outcome = f"ended (marked FAILED): {self.reason}"
        elif self.verdict is Verdict.ALIVE:
            outcome = f"left alone: {self.reason}"
        else:
            outcome = f"left alone: {self.reason}; {CHECK_THEN_END}"
        return f"run {self.run_id} ({self.name}), started {started}, owner {owner}: {outcome}"


def review(client: MlflowClient, experiment_id: str, end_abandoned: bool) -> list[UnfinishedRun]:
    """Every RUNNING run of the experiment, judged; with `end_abandoned`, those whose owner is provably
    dead are ended (one search query when none is)."""
    runs = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=MAX_UNFINISHED
    )
    here = this_process()
    reviewed = []
    for run in runs:
        owner = Owner.from_tags(run.data.tags)
        judgement = judge(owner, here)
        unfinished = UnfinishedRun(
            run.info.run_id,
            run.data.tags.get(RUN_NAME, run.info.run_name or ""),
            run.info.start_time,
            owner,
            judgement.verdict,
            judgement.reason,
        )
        if end_abandoned and judgement.verdict is Verdict.DEAD:
            end(client, experiment_id, unfinished.run_id, judgement.reason)
            unfinished = replace(unfinished, ended=True)
        reviewed.append(unfinished)
    return reviewed


def end_run(client: MlflowClient, experiment_id: str, run_id: str) -> UnfinishedRun:
    """End a RUNNING run of the experiment an analyst has checked. Raises `RunNotEnded` when there is no
    such run, it is not running or not in the experiment, or its owner on this host is still alive."""
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise RunNotEnded(f"no MLflow run {run_id} in this store") from error
    name = run.data.tags.get(RUN_NAME, run.info.run_name or "")
    if run.info.experiment_id != experiment_id:
        raise RunNotEnded(f"run {run_id} ({name}) is not a povrisk run: left alone")
    if run.info.status != RunStatus.to_string(RunStatus.RUNNING):
        raise RunNotEnded(f"run {run_id} ({name}) is not running ({run.info.status}): nothing to end")
    owner = Owner.from_tags(run.data.tags)
    here = this_process()
    judgement = judge(owner, here)
    if judgement.verdict is Verdict.ALIVE:
        raise RunNotEnded(f"run {run_id} ({name}): {judgement.reason}; end that process first")
    reason = (
        judgement.reason
        if judgement.verdict is Verdict.DEAD
        else f"{judgement.reason}; ended by hand with `povrisk doctor --end-run` on {here.host}"
    )
    end(client, experiment_id, run_id, reason)
    return UnfinishedRun(run_id, name, run.info.start_time, owner, judgement.verdict, reason, ended=True)


def end(client: MlflowClient, experiment_id: str, run_id: str, because: str) -> None:
    """Mark the run FAILED with why and when, and its pending logged models FAILED."""
    now = time.time()
    stamp = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds")
    client.log_batch(run_id, tags=[RunTag(ENDED_BECAUSE, because), RunTag(ENDED_AT, stamp)])
    for model in client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'"):
        if model.status == LoggedModelStatus.PENDING:
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
    client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FAILED), end_time=int(now * 1000))
