"""A county with a model of its own, as an analyst runs it: a policy file listing the county, `train --county`
registering the county's model, `promote --county`, and `score --county` choosing it, while the other county
keeps the shared model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from features.policy import DEFAULT_POLICY_PATH

from .invoking import invoke, invoke_lines, one_error_line

pytestmark = pytest.mark.integration


@pytest.fixture
def province(workplace: Path, local_stores: None) -> Path:
    """Two counties, C1 and C2, in the register; a policy giving C2 models of its own."""
    policy_file = workplace / "policy.yaml"
    if not policy_file.exists():
        folder = workplace / "county"
        code, output = invoke(
            "simulate", "--out", str(folder), "--households", "300", "--villages", "6", "--rounds", "3",
            "--seed", "4", "--draws", "10",
        )  # fmt: skip
        assert code == 0, output
        for county in ("C1", "C2"):
            code, output = invoke("ingest", str(folder), "--county", county)
            assert code == 0, output
        settings = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
        settings["county_models"] = {"counties": ["C2"], "until_trained": "shared_model"}
        policy_file.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return policy_file


def _last_json(lines: list[str]) -> dict:
    return json.loads(lines[-1])


def _model_names(flag_list: Path) -> set[str]:
    return set(pd.read_csv(flag_list.with_suffix(".csv"))["model_name"])


def test_a_county_of_its_own_model_is_trained_promoted_and_scored_by_it(province: Path, workplace: Path):
    policy = ("--policy", str(province))
    for task in ("poverty", "relapse"):
        code, lines = invoke_lines("train", "--task", task, "--county", "C1", *policy)
        assert code == 0, lines
        assert _last_json(lines)["model_name"] == f"povrisk-{task}", "C1 has no model of its own"
        assert invoke("promote", "--task", task, *policy)[0] == 0

    out = workplace / "flags-c2.csv"
    code, output = invoke("score", "--round", "2", "--county", "C2", "--out", str(out), *policy)
    assert code == 0, output
    assert _model_names(out) == {"povrisk-poverty;povrisk-relapse"}, "until trained: the shared models"

    code, lines = invoke_lines("train", "--task", "poverty", "--county", "C2", *policy)
    assert code == 0, lines
    registered = _last_json(lines)
    assert (registered["model_name"], registered["county"]) == ("povrisk-poverty-C2", "C2")
    assert "registered povrisk-poverty-C2 version 1 as challenger" in lines
    code, lines = invoke_lines("promote", "--task", "poverty", "--county", "C2", *policy)
    assert code == 0, lines
    assert _last_json(lines)["model_name"] == "povrisk-poverty-C2"

    code, output = invoke("score", "--round", "2", "--county", "C2", "--out", str(out), *policy)
    assert code == 0, output
    assert _model_names(out) == {"povrisk-poverty-C2;povrisk-relapse"}
    out_c1 = workplace / "flags-c1.csv"
    code, output = invoke("score", "--round", "2", "--county", "C1", "--out", str(out_c1), *policy)
    assert code == 0, output
    assert _model_names(out_c1) == {"povrisk-poverty;povrisk-relapse"}

    error = one_error_line("promote", "--task", "poverty", "--county", "C1", *policy)
    assert "county C1 has no model of its own" in error and "C2" in error
    error = one_error_line("rollback", "--task", "poverty", "--county", "C2", *policy)
    assert "povrisk-poverty-C2" in error and "nothing to roll back" in error


def test_a_refusing_policy_leaves_a_county_without_its_own_model_unscored(province: Path, workplace: Path):
    settings = yaml.safe_load(province.read_text(encoding="utf-8"))
    settings["county_models"] = {"counties": ["C1"], "until_trained": "refuse"}
    refusing = workplace / "refusing.yaml"
    refusing.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    out = workplace / "refused.csv"
    error = one_error_line(
        "score", "--round", "2", "--county", "C1", "--out", str(out), "--policy", str(refusing)
    )
    assert (
        "county C1 is scored by models of its own" in error and "povrisk train --task T --county C1" in error
    )
    assert not out.with_suffix(".csv").exists()
