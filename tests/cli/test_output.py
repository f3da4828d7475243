from pathlib import Path

import pandas as pd
import pytest

from cli.output import check_frame_path, staged_frame, write_atomically, write_frame, write_json


def test_frame_written_as_csv_and_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"household_id": ["H1", "H2"], "risk": [0.2, 0.7]})
    write_frame(frame, tmp_path / "flags.csv")
    write_frame(frame, tmp_path / "flags.parquet")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "flags.csv"), frame, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "flags.parquet"), frame)


def test_a_failing_writer_leaves_neither_a_partial_file_nor_a_temporary(tmp_path: Path) -> None:
    target = tmp_path / "flags.csv"
    target.write_text("the previous list\n")

    def half_write(path: Path) -> None:
        path.write_text("household_id,risk\nH1,")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, half_write)
    assert target.read_text() == "the previous list\n"
    assert [p.name for p in tmp_path.iterdir()] == ["flags.csv"]


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.xlsx"):
        write_frame(pd.DataFrame({"a": [1]}), tmp_path / "flags.xlsx")


def test_json_written(tmp_path: Path) -> None:
    write_json({"task": "relapse", "model": {"roc_auc": 0.8}}, tmp_path / "e.json")
    assert '"roc_auc": 0.8' in (tmp_path / "e.json").read_text()


def test_staged_frames_are_moved_into_place_only_when_the_block_succeeds(tmp_path: Path) -> None:
    frame = pd.DataFrame({"household_id": ["H1"], "risk": [0.7]})
    paths = [tmp_path / "flags.csv", tmp_path / "flags.parquet"]
    paths[0].write_text("the previous list\n")

    with pytest.raises(RuntimeError, match="store refused"), staged_frame(frame, paths):
        assert len(list(tmp_path.iterdir())) == 3  # the old list and two staged files beside it
        raise RuntimeError("store refused")
    assert [p.name for p in tmp_path.iterdir()] == ["flags.csv"]
    assert paths[0].read_text() == "the previous list\n"

    with staged_frame(frame, paths):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.csv", "flags.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(paths[1]), frame)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("x.txt", r"unknown output type '\.txt'"),
        ("flags", "unknown output type ''"),
        ("folder.csv", "it is a folder"),
        ("a-file/x.csv", "a-file is not a folder"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_up_front(tmp_path: Path, name: str, error: str) -> None:
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ValueError, match=error):
        check_frame_path(tmp_path / name)


def test_an_output_in_folders_still_to_be_made_is_accepted(tmp_path: Path) -> None:
    check_frame_path(tmp_path / "new" / "deeper" / "flags.parquet")
    assert not (tmp_path / "new").exists()
