"""`povrisk import table`: any survey table (CSV, XLSX, Stata, SPSS) through a mapping file into a survey
folder, and into the household register with `--county`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.console import console
from cli.console import fail as _fail


def import_table(
    path: Annotated[
        Path,
        typer.Argument(
            help="The survey file: CSV (UTF-8), XLSX, Stata .dta or SPSS .sav; one row per household or per "
            "member, as the mapping says (an XLSX workbook may hold the member sheet too)."
        ),
    ],
    mapping: Annotated[
        str,
        typer.Option(
            help="A shipped mapping by name (archive-card, costa-rica) or a mapping YAML file "
            "(docs/interfaces.md: the format)."
        ),
    ],
    member_path: Annotated[
        Path | None, typer.Argument(help="The member file, when members are in a file of their own.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Survey folder to write (replaced atomically); required.")
    ] = None,
    county: Annotated[
        str | None,
        typer.Option(
            help="Also append the imported rounds to the household register under this county, as "
            "`povrisk ingest OUT --county C` does (needs --out: the register records the folder it came "
            "from)."
        ),
    ] = None,
    policy_option: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Policy file (currency, money bounds, poverty lines) the survey is checked against; "
            "default: POVRISK_POLICY, else the shipped features/policy.yaml.",
        ),
    ] = None,
) -> None:
    """Import a survey with a mapping file: headers in any language, value maps, units, per-household or
    per-member rows, the survey's own label, extra columns as slices or features. Every problem (a missing
    column, an unmapped value, a number out of range, a missing key) is listed at once and nothing is
    written; the result passes `povrisk validate`."""
    from cli.main import _policy, ingest
    from features.policy_checks import check_against_policy
    from survey.io import write_survey
    from survey.table_import import TableImportError, import_tables
    from survey.table_mapping import MappingError, load_mapping

    if out is None:
        raise _fail("give --out DIR (the survey folder to write)")
    policy, policy_file = _policy(policy_option)
    try:
        chosen = load_mapping(mapping)
        imported = import_tables(
            path,
            chosen,
            member_path,
            checks=[lambda survey: check_against_policy(survey.households, policy, str(policy_file))],
        )
    except MappingError as error:
        raise _fail(str(error)) from error
    except TableImportError as error:
        for problem in error.problems:
            console.print(f"  {problem}", markup=False, soft_wrap=True, highlight=False)
        raise _fail(
            f"{path}: {len(error.problems)} problem(s) importing with mapping {chosen.name}; nothing written"
        ) from error
    survey = imported.result.survey
    write_survey(survey, out)
    for name, count in imported.result.log.items():
        print(f"{name}: {count}")
    if imported.left_out:
        console.print(
            f"columns no part of mapping {chosen.name} reads (left out): {', '.join(imported.left_out)}",
            markup=False,
            soft_wrap=True,
            highlight=False,
        )
    console.print(f"wrote {len(survey.households):,} household rows to {out}", markup=False, highlight=False)
    if county is not None:
        ingest(data=out, county=county, replace=False, by=None, policy_option=policy_option)
