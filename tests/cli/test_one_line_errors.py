"""What a person sees when a command cannot do its work: exit 1 and one line naming what is wrong, never
a traceback, and nothing half-written (validate, score, flags, import, and the last-resort handler of
database errors in `main`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cli.main import main
from store.cases import list_flags, upsert_flags
from store.database import create_schema, make_engine
from survey.io import Survey, write_survey

from ..store.postgres import isolated_postgres_url
from ..store.test_cases import _flags
from .invoking import invoke_lines as invoke
from .invoking import one_error_line

HUGE_ID = "99999999999999999999"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """POVRISK_DB_URL of a fresh database without the flag store's tables: SQLite or PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'flags.db'}"
        monkeypatch.setenv("POVRISK_DB_URL", url)
        yield url
        return
    with isolated_postgres_url() as url:
        monkeypatch.setenv("POVRISK_DB_URL", url)
        yield url


def households(rounds: list[int], ids: list[str] | None = None) -> pd.DataFrame:
    ids = ids or [f"H{index}" for index in range(len(rounds))]
    return pd.DataFrame({"household_id": ids, "village_id": "V1", "round": rounds})


# ------------------------------------------------------------------------------------------- validate


def test_validate_reports_a_survey_without_household_rows(tmp_path: Path) -> None:
    (tmp_path / "households.csv").write_text("household_id,village_id,round\n", encoding="utf-8")
    code, lines = invoke("validate", str(tmp_path))
    assert code == 1
    assert "  households.household_id [at_least_one_row]: 1 failure(s)" in lines


def test_validate_reports_a_round_missing_between_present_ones(tmp_path: Path) -> None:
    write_survey(Survey(households=households([0, 1, 3])), tmp_path / "survey")
    code, lines = invoke("validate", str(tmp_path / "survey"))
    assert code == 1
    assert "  households.round [no_round_missing_between_present_rounds]: 1 failure(s) - 2" in lines


def test_validate_reports_control_characters_escaped(tmp_path: Path) -> None:
    survey = Survey(households=households([0, 0], ids=["H1\x00", "H2\nforged: valid"]))
    write_survey(survey, tmp_path / "survey")
    code, lines = invoke("validate", str(tmp_path / "survey"))
    assert code == 1
    assert lines[1:] == [
        "  households.household_id [no_control_characters]: 2 failure(s) - row 0: 'H1\\x00', "
        "row 1: 'H2\\nforged: valid'"
    ]


def test_validate_names_a_gbk_file_and_how_to_convert_it(tmp_path: Path) -> None:
    (tmp_path / "households.csv").write_bytes(
        "household_id,village_id,round,户主\nH1,V1,0,张三\n".encode("gbk")
    )
    line = one_error_line("validate", str(tmp_path))
    assert f"{tmp_path / 'households.csv'} is not UTF-8" in line
    assert "looks like GBK/GB18030" in line and "iconv -f GB18030 -t UTF-8" in line


def test_import_costa_rica_names_a_gbk_file(tmp_path: Path) -> None:
    source = tmp_path / "train.csv"
    source.write_bytes("Id,idhogar,parentesco1,Target,备注\nID_1,h1,1,4,户主\n".encode("gbk"))
    line = one_error_line("import", "costa-rica", str(source), "--out", str(tmp_path / "out"))
    assert f"{source} is not UTF-8" in line and "iconv -f GB18030 -t UTF-8" in line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------- score


@pytest.fixture
def scorable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A survey folder with round 2 and a stand-in for the champions: scoring gives `_flags()`."""
    import serving.batch
    import training.tracking

    monkeypatch.setattr(training.tracking, "load_champion_predictor", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(serving.batch, "score_round", lambda *_args, **_kwargs: _flags())
    write_survey(Survey(households=households([2, 2, 2], ids=["h1", "h2", "h3"])), tmp_path / "survey")
    return tmp_path / "survey"


def test_score_refuses_an_output_it_cannot_write_before_any_work(tmp_path: Path) -> None:
    nowhere = tmp_path / "no-survey"  # checked after the output: never named
    line = one_error_line("score", "--data", str(nowhere), "--round", "2", "--out", str(tmp_path / "x.txt"))
    assert line == f"error: {tmp_path / 'x.txt'}: unknown output type '.txt'; use .csv or .parquet"
    (tmp_path / "file").write_text("")
    line = one_error_line(
        "score", "--data", str(nowhere), "--round", "2", "--out", str(tmp_path / "file/x.csv")
    )
    assert line == f"error: cannot write {tmp_path / 'file/x.csv'}: {tmp_path / 'file'} is not a folder"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file"]


def test_score_writes_both_files_and_records_the_flags(
    scorable: Path, tmp_path: Path, store_url: str
) -> None:
    out = tmp_path / "lists" / "flags.csv"
    code, lines = invoke("score", "--data", str(scorable), "--round", "2", "--out", str(out))
    assert code == 0, lines
    assert len(pd.read_csv(out)) == len(pd.read_parquet(out.with_suffix(".parquet"))) == 3
    assert sorted(path.name for path in out.parent.iterdir()) == ["flags.csv", "flags.parquet"]
    assert len(list_flags(make_engine(store_url))) == 3


def test_score_writes_no_file_when_the_store_refuses_the_flags(
    scorable: Path, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import serving.batch

    engine = make_engine(store_url)
    create_schema(engine)
    upsert_flags(engine, _flags(round=[1, 1, 1]))
    # the last household's id is longer than the store's column: PostgreSQL refuses the insert, and a
    # trigger makes SQLite refuse it too, after the first flags went in (the transaction rolls back)
    refused = "h" * 65
    monkeypatch.setattr(
        serving.batch, "score_round", lambda *_args, **_kwargs: _flags(household_id=["h1", "h2", refused])
    )
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_long_ids BEFORE INSERT ON flags WHEN length(NEW.household_id) > 64 "
                "BEGIN SELECT RAISE(ABORT, 'value too long for type character varying(64)'); END"
            )
    out = tmp_path / "lists" / "flags.parquet"

    line = one_error_line("score", "--data", str(scorable), "--round", "2", "--out", str(out))

    assert line.startswith(f"error: flag store {engine.url.render_as_string(hide_password=True)}: ")
    assert "the flags were not recorded (" in line and "too long" in line
    assert line.endswith("); no flag list file was written")
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    assert list(list_flags(engine)["round"]) == [1, 1, 1]


# ---------------------------------------------------------------------------------------------- flags


def test_flags_on_a_fresh_database_bring_the_schema_up(store_url: str) -> None:
    assert one_error_line("flags", "set", "1", "verified", "--by", "cadre Li") == "error: no flag with id 1"
    assert invoke("flags", "list") == (0, ["no flags"])


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("1", "--by", ""), "error: by (who made the decision) is empty"),
        (("1", "--by", "x" * 250), "error: by (who made the decision) is 250 characters long; at most 200"),
        (("1", "--by", "cadre Li", "--note", "n" * 2_500), "error: the note is 2,500 characters long"),
        ((HUGE_ID, "--by", "cadre Li"), f"error: flag id {HUGE_ID} is out of range"),
        (("0", "--by", "cadre Li"), "error: flag id 0 is out of range"),
    ],
)
def test_flags_set_refuses_what_the_store_cannot_keep_in_one_line(
    store_url: str, arguments: tuple[str, ...], expected: str
) -> None:
    engine = make_engine(store_url)
    create_schema(engine)
    upsert_flags(engine, _flags())
    flag_id = str(int(list_flags(engine)["id"].min()))
    arguments = tuple(flag_id if argument == "1" else argument for argument in arguments)
    line = one_error_line("flags", "set", arguments[0], "verified", *arguments[1:])
    assert line.startswith(expected)
    assert set(list_flags(engine)["status"]) == {"flagged"}


# ------------------------------------------------------------------------------------ last resort


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("sqlite:///{tmp_path}/no-folder/flags.db", "unable to open database file"),
        ("postgresql+psycopg://cadre:s3cret-pw@127.0.0.1:1/flags", "127.0.0.1"),  # nothing listens on port 1
    ],
)
def test_a_database_error_no_command_handles_is_one_line(
    url: str,
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("POVRISK_DB_URL", url.format(tmp_path=tmp_path))
    monkeypatch.setattr(sys, "argv", ["povrisk", "flags", "list"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: database error: ") and said in lines[0], lines
    assert "s3cret" not in captured.err + captured.out and "Traceback" not in captured.err
    assert "[SQL" not in lines[0] and "sqlalche.me" not in lines[0]
