"""A province's register in parts (`store.parts`): blocks of a county's villages, and a worker's set-up."""

from __future__ import annotations

import platform

import pytest

from store.parts import plan_parts, prepare_worker


def test_parts_follow_the_villages_in_order_and_keep_a_village_whole() -> None:
    sizes = {"C1": {"V1": 40, "V2": 70, "V3": 10, "V4": 200}, "C2": {"V1": 5}}
    parts = plan_parts(sizes, households_per_part=100)
    assert [(p.county_id, p.villages, p.households) for p in parts] == [
        ("C1", ("V1",), 40),
        ("C1", ("V2", "V3"), 80),
        ("C1", ("V4",), 200),
        ("C2", ("V1",), 5),
    ]
    assert parts[1].name == "C1-V2-V3"
    with pytest.raises(ValueError, match="at least 1"):
        plan_parts(sizes, households_per_part=0)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="only glibc's malloc is tuned")
def test_a_worker_raises_its_mmap_threshold_once() -> None:
    prepare_worker.cache_clear()
    assert prepare_worker() is True, "glibc's mallopt accepted the threshold"
    assert prepare_worker.cache_info().misses == 1
    prepare_worker()
    assert prepare_worker.cache_info().hits == 1, "once per process"
