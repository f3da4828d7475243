"""How the service runs: worker count and log level from the environment, the reload signal between
workers and the thread that watches it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from serving.runtime import (
    LOG_LEVEL_VARIABLE,
    WORKERS_VARIABLE,
    ReloadSignal,
    ReloadWatcher,
    RuntimeSettingError,
    reload_signal_path,
    service_log_level,
    service_workers,
)


def test_workers_default_to_one_and_bad_counts_are_refused_by_name() -> None:
    assert service_workers({}) == 1
    assert service_workers({WORKERS_VARIABLE: " 2 "}) == 2
    for bad in ("0", "-1", "two", "1.5", "65"):
        with pytest.raises(RuntimeSettingError, match=rf"POVRISK_WORKERS='{bad}'"):
            service_workers({WORKERS_VARIABLE: bad})


def test_log_level_defaults_to_info_and_unknown_levels_are_refused() -> None:
    assert service_log_level({}) == logging.INFO
    assert service_log_level({LOG_LEVEL_VARIABLE: "warning"}) == logging.WARNING
    with pytest.raises(RuntimeSettingError, match="POVRISK_LOG_LEVEL='LOUD'"):
        service_log_level({LOG_LEVEL_VARIABLE: "loud"})


def test_the_signal_lies_beside_the_local_copy_not_in_it(tmp_path: Path) -> None:
    cache = tmp_path / "champions"
    assert reload_signal_path(cache) == tmp_path / "champions.reload-signal"


def test_an_announced_reload_is_seen_once_by_every_other_worker(tmp_path: Path) -> None:
    path = tmp_path / "champions.reload-signal"
    first, second, third = ReloadSignal(path), ReloadSignal(path), ReloadSignal(path)
    assert not first.changed() and not second.changed()  # no file yet: nothing to do
    first.announce()
    assert not first.changed()  # the announcing worker has reloaded already
    assert second.changed() and not second.changed()
    second.announce()
    assert first.changed()
    assert third.changed() and not third.changed()  # two announcements since it looked: one reload
    assert not list(tmp_path.glob(".*"))  # the staged file was moved into place


def test_the_watcher_reloads_on_a_signal_and_survives_a_failed_reload(tmp_path: Path) -> None:
    path = tmp_path / "champions.reload-signal"
    calls: list[int] = []
    failed, reloaded = threading.Event(), threading.Event()

    def reload() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            failed.set()
            raise RuntimeError("registry unreachable")
        reloaded.set()

    watcher = ReloadWatcher(ReloadSignal(path), reload, poll_seconds=0.01)
    try:
        other = ReloadSignal(path)
        other.announce()
        assert failed.wait(5), "the watcher did not see the signal"
        other.announce()
        assert reloaded.wait(5), "the watcher stopped after a failed reload"
    finally:
        watcher.stop()
    assert calls == [0, 1]
