"""Reading and checking a department's file (workbench.pushes), on hand-built tables."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.exports import xlsx_bytes
from workbench.pushes import PushUnreadable, plan_push, read_push


def test_an_xlsx_with_english_headers_reads_like_a_csv_with_chinese_ones() -> None:
    table = pd.DataFrame(
        {"Household": ["H1", "H2"], "EVENT": ["serious illness", "自然灾害"], "amount": ["900", ""]}
    )
    from_xlsx = read_push(xlsx_bytes(table, "push"), "push.xlsx", "en")
    from_csv = read_push("户编号,事项,金额\nH1,大病,900\nH2,disaster,\n".encode(), "push.csv", "zh")
    plans = [plan_push(frame, {"H1": "V1", "H2": "V2"}, 1_000_000, "en") for frame in (from_xlsx, from_csv)]
    for plan in plans:
        assert [(row.household_id, row.event, row.amount) for row in plan.matched] == [
            ("H1", "serious_illness", 900.0),
            ("H2", "disaster", None),
        ]
        assert plan.problems == []


def test_every_bad_row_is_named_with_its_line() -> None:
    table = read_push(b"household_id,event,amount\nH9,accident,1\nH1,,x\n", "p.csv", "en")
    plan = plan_push(table, {"H1": "V1"}, 1_000, "en")
    assert plan.matched == []
    assert plan.problems[0] == "line 2: no household H9 in the register (in your area)"
    assert (
        plan.problems[1].startswith("line 3: unknown event")
        and "amount “x” must be from 0 to 1,000" in plan.problems[1]
    )


def test_a_file_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(PushUnreadable, match="is not a CSV or XLSX"):
        read_push(b"...", "push.pdf", "en")
    with pytest.raises(PushUnreadable, match="cannot be read"):
        read_push(b"not a zip", "push.xlsx", "en")
