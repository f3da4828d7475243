"""`povrisk`: the command line. It only composes the rooms below it; every command's work lives there."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.console import console
from cli.console import fail as _fail
from cli.console import print_error as _print_error
from cli.import_table import import_table
from cli.users import users_app

app = typer.Typer(
    name="povrisk",
    help="Poverty-risk prediction for targeted poverty alleviation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
flags_app = typer.Typer(
    help="Follow flagged households: list them, record field decisions.", no_args_is_help=True
)
app.add_typer(flags_app, name="flags")
import_app = typer.Typer(
    help="Convert an external survey into the canonical schema (a survey folder).", no_args_is_help=True
)
app.add_typer(import_app, name="import")
import_app.command("table")(import_table)
keys_app = typer.Typer(help="API keys of the scoring service: make them, list them.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")


class Task(StrEnum):
    poverty = "poverty"
    relapse = "relapse"


class Export(StrEnum):
    xlsx = "xlsx"


class Language(StrEnum):
    zh = "zh"
    en = "en"


class ScoringEngine(StrEnum):
    local = "local"
    dask = "dask"


def _database_error_line(error: Exception) -> str:
    """What the database said, on one line: no SQL, no parameters, no password of a URL."""
    from survey.text import printable, redact_credentials

    cause = getattr(error, "orig", None) or error
    said = str(cause.args[0]) if cause is error and cause.args else str(cause)
    return redact_credentials(printable(" ".join(said.split())))


def _print_json_line(document: dict[str, Any]) -> None:
    """The last line of `train` and friends: machine-readable, NaN written as null."""
    print(json.dumps(_json_safe(document), sort_keys=True))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


DataFolder = Annotated[
    Path | None, typer.Option("--data", help="Survey folder in the canonical schema (or --county).")
]
CountyOption = Annotated[
    str | None,
    typer.Option(
        "--county", help="Read the county's rounds from the household register (POVRISK_DB_URL), not --data."
    ),
]


ModelCountyOption = Annotated[
    str | None,
    typer.Option(
        "--county",
        help="The county's own model (povrisk-<task>-<county>), for a county the policy gives one "
        "(county_models); without it, the shared model.",
    ),
]


def _own_model_county(policy: Any, county: str | None) -> str | None:
    """`county` when the policy gives it a model of its own, else None (the shared model)."""
    return county if policy.county_models.has_own_model(county) else None


def _check_own_model_county(policy: Any, county: str | None) -> None:
    """Stop with one line when `--county C` names a county without a model of its own."""
    if county is not None and not policy.county_models.has_own_model(county):
        listed = ", ".join(policy.county_models.counties) or "none"
        raise _fail(
            f"county {county} has no model of its own under policy {policy.version} (county_models lists: "
            f"{listed}); it is scored by the shared model, named without --county"
        )


def _read_conformed_survey(data: Path | None, county: str | None = None):  # type: ignore[no-untyped-def]
    """The survey of `--data DIR` or of `--county C` in the register (exactly one), conformed to the
    schema's types the same way, so that both give the same feature frames."""
    from survey.io import SurveyReadError, read_survey
    from survey.validate import SurveyInvalid, conform

    if (data is None) == (county is None):
        raise _fail("give the survey as --data DIR or as --county C (the household register), one of them")
    try:
        return conform(read_survey(data) if data is not None else _registered_survey(county))
    except SurveyReadError as error:
        raise _fail(str(error)) from error
    except SurveyInvalid as error:
        console.print(error.report.summary(), markup=False, soft_wrap=True)
        raise _fail(f"{_source_name(data, county)} does not match the canonical schema") from error


def _registered_survey(county: str | None):  # type: ignore[no-untyped-def]
    from store.database import create_schema, db_url, make_engine
    from store.register import RegisterError, read_register

    engine = make_engine(db_url())
    create_schema(engine)
    try:
        return read_register(engine, str(county))
    except RegisterError as error:
        raise _fail(str(error)) from error


def _source_name(data: Path | None, county: str | None) -> str:
    return str(data) if data is not None else f"county {county} in the register"


PolicyFile = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="Policy file (currency, poverty lines, money bounds, ages, thresholds); default: the file "
        "named by POVRISK_POLICY, else the shipped features/policy.yaml.",
    ),
]
ClusterEngine = Annotated[
    ScoringEngine,
    typer.Option(
        help="dask: run on a Dask cluster, part by part, over the register's counties (--county C1,C2 or "
        "every county it holds); not with --data."
    ),
]
SchedulerOption = Annotated[
    str | None, typer.Option(help="With --engine dask: a running scheduler's address (tcp://HOST:8786).")
]
WorkersOption = Annotated[
    int | None, typer.Option(min=1, help="With --engine dask: start a local cluster of this many workers.")
]
PartHouseholdsOption = Annotated[
    int, typer.Option(min=100, help="With --engine dask: about this many households a part (a task).")
]


def _policy(option: Path | None):  # type: ignore[no-untyped-def]
    """The policy in force and the file it was read from (`--policy`, else POVRISK_POLICY, else the
    shipped file: `features.policy.policy_path`); a file that cannot be read or holds an invalid policy
    stops the command with one line naming the file and every bad field."""
    from features.policy import PolicyError, load_policy, policy_path

    path = policy_path(option)
    try:
        return load_policy(path), path
    except PolicyError as error:
        raise _fail("; ".join(line.strip() for line in str(error).splitlines())) from error


def _survey_under_policy(data: Path | None, county: str | None, policy_option: Path | None):  # type: ignore[no-untyped-def]
    """What train, evaluate, score and monitor start from: the policy in force (`_policy`), the survey of
    `--data` or `--county` (`_read_conformed_survey`) and its name for messages; stops with one line when
    the survey does not fit the policy (a survey year without a poverty line, a money amount beyond the
    policy's bounds: `features.policy_checks`)."""
    from features.policy_checks import check_against_policy, one_line

    policy, policy_file = _policy(policy_option)
    survey = _read_conformed_survey(data, county)
    source = _source_name(data, county)
    report = check_against_policy(survey.households, policy, str(policy_file))
    if not report.ok:
        raise _fail(
            f"{source} does not fit the policy: {one_line(report)}; `povrisk validate` lists every failure"
        )
    return survey, policy, source


def _parse_seeds(seeds: str) -> tuple[int, ...]:
    try:
        parsed = tuple(int(part) for part in seeds.split(",") if part.strip())
    except ValueError as error:
        raise typer.BadParameter(f"seeds must be integers separated by commas, got {seeds!r}") from error
    if not parsed:
        raise typer.BadParameter("give at least one seed")
    return parsed


@app.command()
def simulate(
    context: typer.Context,
    out: Annotated[
        Path | None, typer.Option(help="Folder to write the county's survey panel and ground truth into.")
    ] = None,
    continue_from: Annotated[
        Path | None,
        typer.Option(
            "--continue",
            help="Folder written earlier by `simulate --out`: append --rounds more rounds of the same "
            "county (settings from its simulation.json; the folder must be unchanged).",
        ),
    ] = None,
    households: Annotated[
        int, typer.Option(min=10, help="Households in the county (the seed county: 155,000).")
    ] = 155_000,
    rounds: Annotated[
        int,
        typer.Option(
            min=1,
            max=20,
            help="Survey rounds (one a year, at least 2); with --continue, rounds to append (default 1).",
        ),
    ] = 5,
    villages: Annotated[
        int, typer.Option(min=1, help="Administrative villages (the seed county: 631).")
    ] = 631,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same county.")] = 0,
    survey_noise: Annotated[
        float, typer.Option(min=0.0, help="Misreporting and missing answers; 0 makes the survey the truth.")
    ] = 1.0,
    first_year: Annotated[int, typer.Option(help="Calendar year of round 0.")] = 2014,
    draws: Annotated[
        int, typer.Option(min=10, help="Monte Carlo draws for the true next-round poverty probability.")
    ] = 200,
    counties: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=999,
            help="Make a province of this many counties instead (each of --households households and "
            "--villages villages, its income level and trend drawn around the seed county's), written as a "
            "Parquet dataset partitioned by county and round (DIR/households/county_id=C001/round=0/...); "
            "`ingest DIR --county C001` takes one county of it into the register.",
        ),
    ] = None,
    export: Annotated[
        Export | None,
        typer.Option(
            help="Also write the county as archive-card workbooks (建档立卡, the layout of `import table "
            "--mapping archive-card`): DIR/archive-card/round-<r>.xlsx, sheets 户表 and 成员表, one workbook "
            "a round, beside the parquet tables (which every other command reads). With --continue every "
            "round is written again; a folder that has them keeps them up to date without the option."
        ),
    ] = None,
) -> None:
    """Simulate a county: households and members every round, plus the simulator's ground truth.

    The folder also gets simulation.json, the settings it was made with, so that `--continue DIR --rounds
    K` can append K rounds to the same households later (the next turn of the round cycle)."""
    from survey.archive_card import archive_card_folders
    from survey.continuation import MANIFEST_FILE, manifest_for
    from survey.io import write_survey
    from survey.province import ProvinceSettings
    from survey.simulate import CountySettings, simulate_county

    if (out is None) == (continue_from is None):
        raise _fail("give --out DIR (a new county) or --continue DIR (more rounds of one), one of them")
    if continue_from is not None:
        _continue_simulation(context, continue_from, rounds, export)
        return
    assert out is not None
    if rounds < 2:
        raise _fail(f"a simulated county needs at least 2 rounds, got --rounds {rounds}")
    if counties is not None and export is not None:
        raise _fail(
            "--export writes one county's workbooks; a province (--counties) is written as Parquet only"
        )
    settings = CountySettings(
        households=households,
        villages=min(villages, households),
        rounds=rounds,
        seed=seed,
        survey_noise=survey_noise,
        first_year=first_year,
        monte_carlo_draws=draws,
    )
    if counties is not None:
        _simulate_province(ProvinceSettings(counties=counties, county=settings), out)
        return
    county = simulate_county(settings)
    write_survey(
        county,
        out,
        extra_files={MANIFEST_FILE: manifest_for(settings).to_json()},
        extra_folders=archive_card_folders(county) if export else None,
    )
    console.print(
        f"wrote {len(county.households):,} household rows "
        f"({households:,} households x {rounds} rounds) to {out}"
    )


def _simulate_province(settings: Any, out: Path) -> None:
    """`simulate --counties N`: the counties one at a time, each announced as it is written."""
    from survey.province import write_province

    written = write_province(
        settings,
        out,
        progress=lambda county, survey: console.print(
            f"  {county.county_id}: {len(survey.households):,} household rows, income level "
            f"{county.level:.2f}x, trend {county.trend:+.3f} a year"
        ),
    )
    households = settings.counties * settings.county.households
    console.print(
        f"wrote a province of {len(written)} counties ({households:,} households x {settings.county.rounds} "
        f"rounds) to {out}"
    )


def _continue_simulation(
    context: typer.Context, folder: Path, more_rounds: int, export: Export | None = None
) -> None:
    """`simulate --continue`: only --rounds may be given, every other setting comes from the manifest."""
    from survey.archive_card import ARCHIVE_FOLDER, archive_card_folders
    from survey.continuation import (
        MANIFEST_FILE,
        ContinuationError,
        continue_county,
        read_simulated_county,
    )
    from survey.io import write_survey

    def given(name: str) -> bool:
        source = context.get_parameter_source(name)  # typer's own click: compare by name
        return source is not None and source.name != "DEFAULT"

    settings_options = ("households", "villages", "seed", "survey_noise", "first_year", "draws")
    refused = ["--" + name.replace("_", "-") for name in settings_options if given(name)]
    if refused:
        raise _fail(
            f"{', '.join(refused)} cannot be given with --continue: the county's settings come from "
            f"{folder / MANIFEST_FILE}; give only --rounds"
        )
    if not given("rounds"):
        more_rounds = 1
    try:
        stored, manifest = read_simulated_county(folder)
        county, longer = continue_county(stored, manifest, more_rounds)
    except ContinuationError as error:
        raise _fail(f"cannot continue {folder}: {error}; nothing was written") from error
    del stored
    cards = export is not None or (folder / ARCHIVE_FOLDER).is_dir()
    write_survey(
        county,
        folder,
        extra_files={MANIFEST_FILE: longer.to_json()},
        extra_folders=archive_card_folders(county) if cards else None,
    )
    total = longer.settings.rounds
    added = f"round {total - 1}" if more_rounds == 1 else f"rounds {total - more_rounds}-{total - 1}"
    console.print(f"appended {added} to {folder}: {longer.settings.households:,} households x {total} rounds")


@app.command()
def validate(
    data: Annotated[Path, typer.Argument(help="Survey folder (households, members, villages).")],
    policy_option: PolicyFile = None,
) -> None:
    """Check a survey against the canonical schema and the policy (every survey year has a poverty line,
    money within the policy's bounds); exit 1 with every bad column and row when it fails."""
    from features.policy_checks import check_against_policy
    from survey.io import SurveyReadError, read_survey
    from survey.validate import ValidationReport, validate_survey

    policy, policy_file = _policy(policy_option)
    try:
        survey = read_survey(data)
    except SurveyReadError as error:
        raise _fail(str(error)) from error
    report = ValidationReport.combined(
        validate_survey(survey), check_against_policy(survey.households, policy, str(policy_file))
    )
    if not report.ok:
        print(report.summary())
        raise typer.Exit(code=1)
    print(f"{data}: valid")


@app.command()
def train(
    task: Annotated[
        Task, typer.Option(help="poverty: poor now; relapse: falls (back) into poverty next round.")
    ],
    seed: Annotated[int, typer.Option(help="Random seed for splits and LightGBM.")] = 0,
    field_labels: Annotated[
        bool,
        typer.Option(
            help="Correct labels with field decisions on `poor` flags from the flag store (POVRISK_DB_URL), "
            "when it holds any."
        ),
    ] = True,
    data: DataFolder = None,
    county: CountyOption = None,
    policy_option: PolicyFile = None,
    engine: ClusterEngine = ScoringEngine.local,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    part_households: PartHouseholdsOption = 20_000,
) -> None:
    """Train a model, log it to MLflow and register it as the `challenger`; print its metrics as JSON last.

    With --county C for a county the policy gives a model of its own (county_models), the model is that
    county's, `povrisk-<task>-<C>`; else the shared `povrisk-<task>`. With --engine dask the rows of the
    register's counties are built and the boosters trained on a Dask cluster through `lightgbm.dask`
    (`training.province`): the shared model on the counties without models of their own, then each such
    county's own model on its rows alone, one JSON line each."""
    from features.policy import PolicyError
    from training.tracking import log_and_register
    from training.train import train_task

    if engine is ScoringEngine.dask:
        if data is not None:
            raise _fail(
                "--engine dask trains on the register's counties (--county, or every county); not --data"
            )
        _train_on_cluster(
            task.value, seed, field_labels, county, policy_option, scheduler, workers, part_households
        )
        return
    if scheduler is not None or workers is not None:
        raise _fail("--scheduler and --workers go with --engine dask")
    survey, policy, _ = _survey_under_policy(data, county, policy_option)
    decisions = _stored_field_decisions(county) if field_labels else None
    try:
        trained = train_task(survey, task.value, policy, seed=seed, field_decisions=decisions)
    except PolicyError as error:
        raise _fail(str(error)) from error
    console.print(_field_labels_summary(trained.field_labels, asked=field_labels))
    source = f"county:{county}" if county else Path(str(data)).name
    own = _own_model_county(policy, county)
    registered = log_and_register(trained, policy, source, survey=survey, county=own)
    console.print(f"registered {registered['model_name']} version {registered['version']} as challenger")
    _print_json_line({"task": task.value, **registered, **trained.metrics})


def _train_on_cluster(
    task: str,
    seed: int,
    field_labels: bool,
    counties: str | None,
    policy_option: Path | None,
    scheduler: str | None,
    workers: int | None,
    part_households: int,
) -> None:
    """`train --engine dask`: the task's rows built on a Dask cluster from the register's counties and the
    boosters trained there through `lightgbm.dask` (`training.province`); logged and registered as the
    single-machine command does. The counties without models of their own (the policy's county_models)
    train the shared model, source `province:C1,C2,...`; each county with one trains its own, source
    `county:C`, on the same cluster. One JSON line per model registered."""
    import lightgbm as lgb

    from store.register import RegisterError, register_rounds, village_sizes
    from training.province import TrainJob, plan_row_parts
    from training.settings import load_training_settings
    from training.train import candidate_specs

    _check_cluster_choice(scheduler, workers)
    policy, policy_file = _policy(policy_option)
    settings = load_training_settings()
    specs = candidate_specs(None, settings)
    url, register = _cluster_register()
    try:
        names = _province_counties(register, counties)
        held = register_rounds(register)
        held = held[held["county_id"].astype(str).isin(names)]
        rounds_of = {
            str(county): sorted(int(r) for r in rows["round"]) for county, rows in held.groupby("county_id")
        }
        parts = plan_row_parts(
            rounds_of,
            lambda county, round_: village_sizes(register, county, round_),
            task,  # type: ignore[arg-type]
            part_households,
        )
    except RegisterError as error:
        raise _fail(str(error)) from error
    finally:
        register.dispose()
    if not parts:
        raise _fail(f"{task}: the register's counties hold no round to train on (relapse needs two in a row)")
    job = TrainJob(
        task=task,  # type: ignore[arg-type]
        db_url=url,
        seed=seed,
        folds=settings.cv_folds,
        validation_share=specs[0].validation_share,
        policy_file=str(policy_file),
        field_labels=field_labels,
    )
    models = _cluster_models(policy, names)
    fits = (len(specs) * settings.cv_folds + 1) * (1 if task == "poverty" else 2)  # relapse: held out, final
    lgb.register_logger(logging.getLogger("lightgbm"))  # lightgbm.dask's "finding ports" lines, quieted
    heading = (
        f"{task}: {len(names)} counties, {len(parts)} parts; {len(models)} model(s), {fits} boosters each "
        "to train (lightgbm.dask)"
    )
    with _cluster_with_bar(scheduler, workers, heading, "rows", (fits + 1) * len(models)) as (client, step):
        for own, members in models:
            _train_one_on_cluster(client, job, policy, settings, own, members, parts, held, step)


def _cluster_models(policy: Any, names: list[str]) -> list[tuple[str | None, list[str]]]:
    """The models `train --engine dask` trains: (None, the counties without models of their own) for the
    shared model when there are any, then (C, [C]) for each county the policy gives its own."""
    shared = [name for name in names if not policy.county_models.has_own_model(name)]
    own = [name for name in names if policy.county_models.has_own_model(name)]
    return ([(None, shared)] if shared else []) + [(name, [name]) for name in own]


def _train_one_on_cluster(
    client: Any,
    job: Any,
    policy: Any,
    settings: Any,
    own: str | None,
    members: list[str],
    parts: list[Any],
    held: Any,
    step: Any,
) -> None:
    """Train one model (`own` county's, or the shared one: None) on `members`' parts; log, register and
    print it."""
    from training.province import province_data_hash, train_province_task
    from training.tracking import log_and_register

    task = job.task
    mine = [row_part for row_part in parts if row_part.part.county_id in members]
    if not mine:
        raise _fail(
            f"{task}: {'county ' + own if own else 'the counties ' + ', '.join(members)} hold no round to "
            "train on (relapse needs two in a row)"
        )
    rounds = held[held["county_id"].astype(str).isin(members)]
    try:
        trained = train_province_task(
            client, mine, job, policy, province_data_hash(rounds), settings, progress=step
        )
    except ValueError as error:  # a PolicyError among them; one class only; no labelled rows
        raise _fail(f"{'county ' + own + ': ' if own else ''}{error}") from error
    console.print(_field_labels_summary(trained.field_labels, asked=job.field_labels))
    source = f"county:{own}" if own else f"province:{','.join(members)}"
    registered = log_and_register(trained, policy, source, county=own)
    console.print(f"registered {registered['model_name']} version {registered['version']} as challenger")
    _print_json_line({"task": task, "engine": "dask", **registered, **trained.metrics})


def _field_labels_summary(counts: dict[str, int] | None, asked: bool) -> str:
    """One line on what field decisions did to the labels (printed by `train`)."""
    if counts is None:
        why = "the flag store holds no field decisions" if asked else "--no-field-labels"
        return f"field labels: not used ({why})"
    return (
        f"field labels: {counts['decisions']} field decision(s), {counts['not_about_poverty']} not about "
        f"poverty (watched categories); {counts['used']} used: {counts['confirmed']} confirmed, "
        f"{counts['flipped_to_poor']} flipped 0 -> 1, {counts['flipped_to_not_poor']} flipped 1 -> 0, "
        f"{counts['filled']} filled an unknown label; {counts['unmatched']} without a household-round "
        "behind this task's labels"
    )


def _stored_field_decisions(county: str | None = None):  # type: ignore[no-untyped-def]
    """The flag store's field decisions (on the county's households, with `county`), or None when it has
    none (a SQLite file not there is not made)."""
    from store.cases import field_decisions
    from store.database import db_url, make_engine

    url = db_url()
    if not _store_exists(url):
        return None
    decisions = field_decisions(make_engine(url), county_id=county)
    return decisions if len(decisions) else None


def _stored_cases(county: str | None):  # type: ignore[no-untyped-def]
    """The flag store's cases of the county (`--data` scoring stores them under no county), or None
    when there is no store (a SQLite file not there is not made)."""
    from store.cases import NO_COUNTY, case_overview
    from store.database import create_schema, db_url, make_engine

    url = db_url()
    if not _store_exists(url):
        return None
    engine = make_engine(url)
    try:
        create_schema(engine)
        return case_overview(engine, county or NO_COUNTY)
    finally:
        engine.dispose()


def _store_exists(url: str) -> bool:
    from sqlalchemy import make_url

    database = make_url(url).database
    return not (
        url.startswith("sqlite") and database not in (None, "", ":memory:") and not Path(database).exists()
    )


@app.command()
def evaluate(
    task: Annotated[Task, typer.Option(help="Which model to evaluate.")],
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the evaluation JSON.")],
    seed: Annotated[str, typer.Option(help="One seed or several separated by commas (averaged).")] = "0",
    data: DataFolder = None,
    county: CountyOption = None,
    policy_option: PolicyFile = None,
) -> None:
    """Honest evaluation of the model and every baseline (and the oracle on a simulated county)."""
    from cli.output import write_json
    from features.policy import PolicyError
    from training.evaluate import evaluate_task

    seeds = _parse_seeds(seed)
    survey, policy, _ = _survey_under_policy(data, county, policy_option)
    try:
        result = evaluate_task(survey, task.value, policy, seeds=seeds)
    except PolicyError as error:
        raise _fail(str(error)) from error
    write_json(_json_safe(result), json_path)
    headline = {"task": task.value, "model": result["model"]}
    if "vs_oracle" in result:
        headline["vs_oracle"] = result["vs_oracle"]
    _print_json_line(headline)


def _system_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@app.command()
def rollback(
    task: Annotated[Task, typer.Option(help="Which model's champion to move back.")],
    by: Annotated[str, typer.Option(help="Who rolls back (recorded); default: this system user.")] = "",
    county: ModelCountyOption = None,
    policy_option: PolicyFile = None,
) -> None:
    """Move `champion` back to the version it replaced (recorded at promotion); exit 1 when there is none."""
    from training.tracking import RollbackRefused
    from training.tracking import rollback as roll_back

    policy, _ = _policy(policy_option)
    _check_own_model_county(policy, county)
    try:
        decision = roll_back(task.value, by=by or _system_user(), county=county)
    except RollbackRefused as refused:
        raise _fail(str(refused)) from refused
    console.print(decision["reason"])
    _print_json_line(decision)


PROMOTION_REFUSED = 3
"""`povrisk promote`'s exit code when it kept the champion (1 stays for errors: bad input, no challenger)."""


@app.command()
def compare(
    task: Annotated[Task, typer.Option(help="Which model's challenger and champion to compare.")],
    replicates: Annotated[int, typer.Option(help="Bootstrap resamples of households.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the comparison as JSON.")] = (
        None
    ),
    figures: Annotated[Path | None, typer.Option(help="Folder to write the two figures (PNG) into.")] = None,
    data: DataFolder = None,
    county: CountyOption = None,
    policy_option: PolicyFile = None,
) -> None:
    """Challenger against champion on the same held-out households: every headline metric of both, the
    difference and its bootstrap 95% interval (households resampled), the same per township and village
    with enough held-out households (their areas are logged with the challenger's held-out rows; for a
    run logged before that, give the survey it learned from with --data or --county), both models'
    calibration named by the labels it is measured against, and what `promote` would decide. With --county
    C for a county the policy gives a model of its own, that county's model. Changes nothing. Last line:
    the comparison as JSON."""
    from cli.comparison import print_comparison
    from training.compare import compare_models
    from training.settings import load_training_settings

    policy, _ = _policy(policy_option)
    survey = _read_conformed_survey(data, county) if (data or county) else None
    if replicates < 1:
        raise _fail(f"--replicates must be at least 1, got {replicates}")
    settings = load_training_settings()
    try:
        comparison = compare_models(
            task.value,
            seed=seed,
            replicates=replicates,
            policy=policy,
            settings=settings,
            survey=survey,
            county=_own_model_county(policy, county),
        )
    except LookupError as error:
        raise _fail(str(error).strip("'\"")) from error
    print_comparison(comparison, replicates, settings.promotion.metric)
    document = comparison.to_dict()
    if json_out is not None:
        json_out.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        for name, figure in comparison.figures().items():
            figure.savefig(figures / name, dpi=100)
    _print_json_line(document)


@app.command()
def promote(
    task: Annotated[Task, typer.Option(help="Which model's challenger to consider.")],
    force: Annotated[
        bool,
        typer.Option(
            help="Promote even when the training data drifted beyond the policy threshold or the "
            "challenger does not win (give --reason)."
        ),
    ] = False,
    reason: Annotated[str, typer.Option(help="Why the promotion is forced (recorded on the version).")] = "",
    by: Annotated[str, typer.Option(help="Who promotes (recorded); default: this system user.")] = "",
    county: ModelCountyOption = None,
    policy_option: PolicyFile = None,
) -> None:
    """Move `champion` to the challenger only if it wins on held-out data.

    First the challenger's training data is compared with the champion's (drift, logged to MLflow); a
    drift above the policy threshold refuses the promotion unless --force. Exits 0 only when it promoted;
    PROMOTION_REFUSED (3) when it kept the champion (drift, a challenger that does not win, or one that
    already is the champion), so that a script never mistakes a refusal for a promotion. `--force --reason`
    promotes whatever drift and metric say. The new champion records who, when, why and the version it
    replaced (`povrisk rollback` returns to it). --county C: the county's own model (county_models).
    """
    from functools import partial

    from rich.markup import escape

    from monitoring.training_drift import training_data_drift
    from training.tracking import promote as promote_challenger

    if force and not reason.strip():
        raise _fail("--force needs --reason: why the challenger is promoted whatever drift and metric say")
    policy, _ = _policy(policy_option)
    _check_own_model_county(policy, county)
    drift_check = partial(training_data_drift, task.value, policy=policy)
    decision = promote_challenger(
        task.value,
        policy,
        drift_check=drift_check,
        force=force,
        by=by or _system_user(),
        force_reason=reason.strip(),
        county=county,
    )
    if not decision.get("promoted"):
        console.print(f"[bold red]not promoted:[/] {escape(str(decision.get('reason', '')))}")
        _print_json_line(decision)
        raise typer.Exit(code=PROMOTION_REFUSED)
    console.print(decision.get("reason", ""))
    _print_json_line(decision)


@app.command()
def score(
    round_: Annotated[int, typer.Option("--round", help="Survey round to score.")],
    out: Annotated[
        Path,
        typer.Option(
            help="Flag list file (.csv or .parquet); the other format is written beside. With --engine dask "
            "a folder of flag-list parts."
        ),
    ],
    lang: Annotated[Language, typer.Option(help="Language of the reasons.")] = Language.zh,
    store: Annotated[bool, typer.Option(help="Record the flags in the flag store (POVRISK_DB_URL).")] = True,
    data: DataFolder = None,
    county: CountyOption = None,
    policy_option: PolicyFile = None,
    engine: ClusterEngine = ScoringEngine.local,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    part_households: PartHouseholdsOption = 20_000,
) -> None:
    """Score a round with the champions; write the flag list by village and record it in the flag store.

    All or nothing: both files are written beside their places first, the flags are recorded in the
    store (one transaction), and only then are the files moved into place; when the store refuses the
    flags, no file is written. The champions must have been trained under the policy in force (its
    version), as the service requires (`training.tracking.load_champion_predictor`). A county the policy
    gives models of its own (county_models) is scored by them (`training.tracking.scoring_versions`).
    """
    from cli.output import check_frame_path, staged_frame
    from features.policy import PolicyError
    from serving.batch import score_round
    from training.tracking import load_champion_predictor

    if engine is ScoringEngine.dask:
        if data is not None:
            raise _fail(
                "--engine dask scores the register's counties (--county, or every county); not --data"
            )
        _score_on_cluster(round_, out, lang.value, county, policy_option, scheduler, workers, part_households)
        return
    if scheduler is not None or workers is not None:
        raise _fail("--scheduler and --workers go with --engine dask")
    outputs = [out.with_suffix(".csv"), out.with_suffix(".parquet")]
    try:
        for path in (out, *outputs):
            check_frame_path(path)
    except ValueError as error:
        raise _fail(str(error)) from error
    survey, policy, source = _survey_under_policy(data, county, policy_option)
    if round_ not in set(survey.households["round"]):
        raise _fail(
            f"{source} has no round {round_}; rounds present: {sorted(set(survey.households['round']))}"
        )
    try:
        flags = score_round(load_champion_predictor(policy, county), survey, round_, lang=lang.value)
    except (PolicyError, LookupError) as error:
        raise _fail(str(error)) from error
    with staged_frame(flags, outputs):  # moved into place only when the block below succeeds
        recorded = (
            _record_flags(flags if county is None else flags.assign(county_id=county)) if store else None
        )
    console.print(
        f"{len(flags):,} households flagged in round {round_}; "
        f"written to {out.with_suffix('.csv')} and .parquet"
    )
    if recorded is not None:
        console.print(recorded, markup=False, soft_wrap=True)


def _score_on_cluster(
    round_: int,
    out: Path,
    lang: str,
    counties: str | None,
    policy_option: Path | None,
    scheduler: str | None,
    workers: int | None,
    part_households: int,
) -> None:
    """`score --engine dask`: the round of the register's counties in parts on a Dask cluster; each part's
    flags written to the flag store and to OUT/county_id=C/part-*.parquet by the worker that scored it."""

    from features.policy import PolicyError
    from serving.province import Job, models_named, pin_county_versions, score_province
    from store.parts import plan_parts
    from store.register import RegisterError, village_sizes
    from training.tracking import tracking_uri

    _check_cluster_choice(scheduler, workers)
    if out.exists() and not out.is_dir():
        raise _fail(f"--out {out} is a file; with --engine dask it is a folder of flag-list parts")
    policy, policy_file = _policy(policy_option)
    url, register = _cluster_register()
    try:
        names = _province_counties(register, counties)
        sizes = {name: village_sizes(register, name, round_) for name in names}
        versions = pin_county_versions(policy, names)
    except (RegisterError, LookupError, PolicyError) as error:
        raise _fail(str(error)) from error
    finally:
        register.dispose()
    parts = plan_parts(sizes, part_households)
    job = Job(
        round=round_,
        db_url=url,
        tracking_uri=tracking_uri(),
        versions=versions,
        policy_file=str(policy_file),
        lang=lang,
        out=str(out.resolve()),
    )
    households = sum(part.households for part in parts)
    heading = (
        f"round {round_} of {len(names)} counties: {households:,} households in {len(parts)} parts, "
        f"models {', '.join(models_named(job.versions))}"
    )
    with _cluster_with_bar(scheduler, workers, heading, "parts scored", len(parts)) as (client, step):
        scored = score_province(client, parts, job, progress=step)
    flagged = sum(one.flagged for one in scored)
    inserted, updated = sum(one.inserted for one in scored), sum(one.updated for one in scored)
    unchanged = sum(one.unchanged for one in scored)
    console.print(
        f"{flagged:,} of {households:,} households flagged in round {round_}; flag store: {inserted:,} new, "
        f"{updated:,} updated, {unchanged:,} unchanged; flag lists in {out}/county_id=*/"
    )


def _record_flags(flags: Any) -> str:
    """Upsert a round's flag list into the flag store; one line on what it did. A store that refuses
    them stops the command with one line naming the store (its password hidden)."""
    from sqlalchemy.exc import SQLAlchemyError

    from store.cases import upsert_flags
    from store.database import SchemaMismatch, create_schema, db_url, make_engine

    engine = make_engine(db_url())
    where = engine.url.render_as_string(hide_password=True)
    try:
        create_schema(engine)
        result = upsert_flags(engine, flags)
    except (SQLAlchemyError, SchemaMismatch) as error:
        raise _fail(
            f"flag store {where}: the flags were not recorded ({_database_error_line(error)}); "
            "no flag list file was written"
        ) from error
    finally:
        engine.dispose()
    return f"flag store {where}: {result}"


@app.command()
def monitor(
    previous: Annotated[int, typer.Option(help="The earlier survey round.")],
    current: Annotated[int, typer.Option(help="The later survey round.")],
    out: Annotated[Path, typer.Option(help="Folder for report.html and the tables (CSV).")] = Path(
        "monitoring"
    ),
    lang: Annotated[Language, typer.Option(help="Language of the report and the reasons.")] = Language.zh,
    track: Annotated[bool, typer.Option(help="Log the report and tables to MLflow.")] = True,
    data: DataFolder = None,
    county: CountyOption = None,
    policy_option: PolicyFile = None,
    engine: Annotated[
        ScoringEngine,
        typer.Option(
            help="dask: compare the rounds of a province on a Dask cluster, part by part (the register's "
            "counties: --county C1,C2 or every county it holds); tables by county and village, each "
            "household's transitions as Parquet parts."
        ),
    ] = ScoringEngine.local,
    scheduler: Annotated[
        str | None, typer.Option(help="With --engine dask: a running scheduler's address (tcp://HOST:8786).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="With --engine dask: start a local cluster of this many workers."),
    ] = None,
    part_households: Annotated[
        int, typer.Option(min=100, help="With --engine dask: about this many households a part (a task).")
    ] = 20_000,
) -> None:
    """Transitions between two rounds (by village and county), category movements, drift, HTML report;
    with --engine dask, of a province's counties on a Dask cluster (tables by county and village)."""
    from cli.output import write_atomically, write_frame
    from serving.monitor import monitor_rounds
    from training.tracking import load_champion_predictor, log_monitoring

    if engine is ScoringEngine.dask:
        if data is not None:
            raise _fail(
                "--engine dask compares the register's counties (--county, or every county); not --data"
            )
        _monitor_on_cluster(
            previous,
            current,
            out,
            lang.value,
            track,
            county,
            policy_option,
            scheduler,
            workers,
            part_households,
        )
        return
    if scheduler is not None or workers is not None:
        raise _fail("--scheduler and --workers go with --engine dask")
    survey, policy, source = _survey_under_policy(data, county, policy_option)
    rounds = sorted(set(survey.households["round"]))
    absent = [
        name for name, value in (("--previous", previous), ("--current", current)) if value not in rounds
    ]
    if absent:
        raise _fail(f"{source} has no round for {', '.join(absent)}; rounds present: {rounds}")
    try:
        result = monitor_rounds(
            load_champion_predictor(policy, county), survey, previous, current, lang.value
        )
    except (ValueError, LookupError) as error:  # a PolicyError among them
        raise _fail(str(error)) from error
    # built before anything is written: a failure leaves the folder as it was
    report = result.report_html(lang.value, _stored_cases(county))
    write_frame(result.counts.reset_index(), out / "transitions-by-village.csv")
    write_frame(result.transitions.reset_index(), out / "household-transitions.csv")
    write_frame(
        result.movements.rename_axis("previous_category").reset_index(), out / "category-movements.csv"
    )
    write_frame(result.drift, out / "drift.csv")
    write_frame(result.flags, out / f"flags-round-{current}.csv")
    write_atomically(out / "report.html", lambda target: target.write_text(report, encoding="utf-8"))
    summary = dict(result.summary)
    if track:
        summary["mlflow_run_id"] = log_monitoring(result.summary, out)
    console.print(f"monitoring report written to {out / 'report.html'}")
    _print_json_line(summary)


PROVINCE_TRANSITIONS_FOLDER = "household-transitions"
"""Where `monitor --engine dask` puts each household's transitions: county_id=C/part-*.parquet."""


def _monitor_on_cluster(
    previous: int,
    current: int,
    out: Path,
    lang: str,
    track: bool,
    counties: str | None,
    policy_option: Path | None,
    scheduler: str | None,
    workers: int | None,
    part_households: int,
) -> None:
    """`monitor --engine dask`: both rounds of the register's counties compared part by part on a Dask
    cluster (`serving.province_monitor`). Everything is checked before the cluster starts; the workers write
    the household transitions into a hidden staging folder inside OUT (which they must reach: on a remote
    cluster, a shared file system), the tables and the report are built and written there too, and only
    then is each moved into place: a failure leaves OUT as it was."""
    import os
    import secrets
    import shutil

    from features.policy import PolicyError
    from serving.province import pin_county_versions, versions_of
    from serving.province_monitor import MonitorJob, plan_monitor_parts
    from store.register import RegisterError, village_sizes
    from training.tracking import load_predictor_versions, log_monitoring, tracking_uri

    _check_cluster_choice(scheduler, workers)
    if previous >= current:
        raise _fail(f"--previous ({previous}) must be an earlier round than --current ({current})")
    if out.exists() and not out.is_dir():
        raise _fail(f"--out {out} is a file; the monitoring report and its tables go into a folder")
    policy, policy_file = _policy(policy_option)
    url, register = _cluster_register()
    try:
        names = _province_counties(register, counties)
        sizes = {r: {name: village_sizes(register, name, r) for name in names} for r in (previous, current)}
        versions = pin_county_versions(policy, names)
        first = versions_of(versions, names[0])
        predictor = load_predictor_versions({task: (name, number) for task, name, number in first}, policy)
    except (RegisterError, LookupError, PolicyError) as error:
        raise _fail(str(error)) from error
    finally:
        register.dispose()
    parts = plan_monitor_parts(sizes[current], sizes[previous], part_households)
    created = not out.exists()
    staging = out / f".monitor-staging-{os.getpid()}-{secrets.token_hex(4)}"
    job = MonitorJob(
        previous=previous,
        current=current,
        db_url=url,
        tracking_uri=tracking_uri(),
        versions=versions,
        policy_file=str(policy_file),
        out=str((staging / PROVINCE_TRANSITIONS_FOLDER).resolve()),
        drift_edges=_province_drift_edges(versions, predictor, policy.drift.bins),
    )
    try:
        staging.mkdir(parents=True)
        result = _compared_on_cluster(scheduler, workers, parts, job, len(names))
        tables = staging / "tables"
        _write_province_monitoring(result, tables, lang)
        summary = dict(result.summary)
        if track:
            summary["mlflow_run_id"] = log_monitoring(result.summary, tables)
        _move_into_place(staging, out)
    except (RegisterError, PolicyError) as error:  # a worker's, as the client re-raises it
        raise _fail(str(error)) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
    console.print(
        f"province monitoring report written to {out / 'report.html'}; each household's transitions in "
        f"{out / PROVINCE_TRANSITIONS_FOLDER}/county_id=*/"
    )
    _print_json_line(summary)


def _compared_on_cluster(
    scheduler: str | None, workers: int | None, parts: list[Any], job: Any, counties: int
) -> Any:
    """The province's comparison on the cluster (`serving.province_monitor.monitor_province`), with the
    Dask dashboard's address and a progress bar over the parts, as `score --engine dask` shows them."""

    from serving.province import models_named
    from serving.province_monitor import monitor_province

    heading = (
        f"rounds {job.previous} and {job.current} of {counties} counties in {len(parts)} parts, "
        f"models {', '.join(models_named(job.versions))}"
    )
    with _cluster_with_bar(scheduler, workers, heading, "parts compared", len(parts)) as (client, step):
        return monitor_province(client, parts, job, progress=step)


@contextmanager
def _cluster_with_bar(
    scheduler: str | None, workers: int | None, heading: str, first_step: str, steps: int
) -> Iterator[tuple[Any, Callable[..., None]]]:
    """A client of the cluster (`serving.province.cluster`), its dashboard's address and `heading` printed,
    and a progress bar of `steps` steps: yields the client and `step(description=None)`, which advances the
    bar one step (renaming it when given a description). The cluster's own log lines are quieted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from serving.province import cluster

    for name in ("distributed", "tornado", "lightgbm"):  # the cluster's chatter: the bar and summary say it
        logging.getLogger(name).setLevel(logging.ERROR)
    with cluster(scheduler, workers) as client:
        console.print(f"Dask dashboard: {client.dashboard_link}")
        console.print(heading)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(first_step, total=steps)

            def step(description: str | None = None, *_: Any) -> None:
                if isinstance(description, str):
                    bar.update(task, advance=1, description=description)
                else:
                    bar.advance(task)

            yield client, step


def _check_cluster_choice(scheduler: str | None, workers: int | None) -> None:
    """`--engine dask` runs on a running cluster or a local one: exactly one of the two options."""
    if (scheduler is None) == (workers is None):
        raise _fail(
            "--engine dask needs --scheduler ADDRESS (a running cluster) or --workers N (a local one)"
        )


def _cluster_register() -> tuple[str, Any]:
    """The register's URL as the workers see it (`_cluster_db_url`) and an engine on it, schema in place."""
    from store.database import create_schema, make_engine

    url = _cluster_db_url()
    register = make_engine(url)
    create_schema(register)
    return url, register


def _cluster_db_url() -> str:
    """The register's URL as the workers must see it: a relative SQLite path made absolute (a worker may
    start in another folder), the password kept (the workers connect with it)."""
    from sqlalchemy.engine import make_url

    from store.database import db_url

    url = make_url(db_url())
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_absolute():
        url = url.set(database=str(Path(url.database).resolve()))
    return url.render_as_string(hide_password=False)


def _province_counties(register: Any, counties: str | None) -> list[str]:
    """The counties of `--county C1,C2`, else every county the register holds; one line naming any county
    the register does not hold."""
    from store.register import register_rounds

    held = sorted(set(register_rounds(register)["county_id"].astype(str)))
    names = [name.strip() for name in counties.split(",") if name.strip()] if counties else held
    if not names:
        raise _fail("the register holds no county; ingest one first (povrisk ingest)")
    unknown = [name for name in names if name not in held]
    if unknown:
        raise _fail(
            f"the register holds no county {', '.join(unknown)}; counties held: {', '.join(held) or 'none'}"
        )
    return names


def _province_drift_edges(versions: Any, predictor: Any, bins: int) -> Any:
    """Drift's bin edges from the pinned models' held-out training rows (`reference_edges`); none, said on
    one line, when those rows cannot be read: the report then says drift was not measured."""
    from mlflow.exceptions import MlflowException

    from serving.monitor import model_features
    from serving.province_monitor import reference_edges, training_references

    try:
        return reference_edges(training_references(versions), model_features(predictor), bins)
    except (MlflowException, OSError, LookupError, ValueError) as error:
        console.print(f"drift not measured: the models' training rows cannot be read ({error})", markup=False)
        return ()


def _write_province_monitoring(result: Any, folder: Path, lang: str) -> None:
    """The province's tables (CSV) and report into `folder`, the report built first."""
    import pandas as pd

    from cli.output import write_atomically, write_frame
    from serving.province_monitor import province_report_html

    report = province_report_html(result, lang)  # type: ignore[arg-type]
    write_frame(result.counts_by_county.reset_index(), folder / "transitions-by-county.csv")
    write_frame(result.counts_by_village.reset_index(), folder / "transitions-by-village.csv")
    write_frame(result.movements.reset_index(), folder / "category-movements.csv")
    by_county = [
        movements.reset_index().assign(county_id=county_id)
        for county_id, movements in result.movements_by_county.items()
    ]
    movements = pd.concat(by_county, ignore_index=True)
    ordered = movements[["county_id", *movements.columns[:-1]]]
    write_frame(ordered, folder / "category-movements-by-county.csv")
    if result.drift is not None:
        write_frame(result.drift, folder / "drift-by-county.csv")
        write_frame(result.score_drift, folder / "score-drift-by-county.csv")
    write_atomically(folder / "report.html", lambda target: target.write_text(report, encoding="utf-8"))


def _move_into_place(staging: Path, out: Path) -> None:
    """The staged tables and report, then the household transitions (replacing an earlier run's), moved
    from `staging` into `out`, each in one rename."""
    import os

    for path in sorted((staging / "tables").iterdir()):
        os.replace(path, out / path.name)
    transitions = staging / PROVINCE_TRANSITIONS_FOLDER
    if transitions.is_dir():
        target = out / PROVINCE_TRANSITIONS_FOLDER
        if target.exists():
            os.replace(target, staging / f"replaced-{PROVINCE_TRANSITIONS_FOLDER}")
        os.replace(transitions, target)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[
        str, typer.Option(help="Address to bind; keep loopback unless behind a reverse proxy.")
    ] = "127.0.0.1",
    keys: Annotated[
        Path | None,
        typer.Option(help="API key file (`povrisk keys add`); default: POVRISK_API_KEYS_FILE."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes (one per core for throughput); default: POVRISK_WORKERS or 1."),
    ] = None,
    policy_option: PolicyFile = None,
) -> None:
    """Start the BentoML service with the champion models of the MLflow registry (or the local copy of
    the last champions). Refuses to start, before the server does, without keys or models, or with
    champions trained under another policy than the one in force (--policy is handed to the server
    process as POVRISK_POLICY, which the service reads)."""
    import os

    from features.policy import POLICY_VARIABLE
    from serving.keys import KEYS_FILE_VARIABLE
    from serving.launch import SERVICE
    from serving.runtime import WORKERS_VARIABLE, RuntimeSettingError, service_workers

    if keys is not None:
        os.environ[KEYS_FILE_VARIABLE] = str(keys)
    if workers is not None:
        os.environ[WORKERS_VARIABLE] = str(workers)
    _, policy_file = _policy(policy_option)
    os.environ[POLICY_VARIABLE] = str(policy_file.resolve())
    try:
        service_workers()  # before importing the service, whose decorator reads it
    except RuntimeSettingError as error:
        raise _fail(f"cannot serve: {error}") from error
    from serving.service import startup_refusal

    refusal = startup_refusal()  # the server would say the same, once, from its deployment hook
    if refusal is not None:
        raise _fail(f"cannot serve: {refusal}")
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE]
    # become the server (exec), so that stopping `povrisk serve` stops the service itself
    os.execv(sys.executable, [*command, "--host", host, "--port", str(port)])


@app.command()
def package(
    build: Annotated[
        bool, typer.Option(help="Run `bentoml build` after packaging the champions (--no-build: only them).")
    ] = True,
    policy_option: PolicyFile = None,
) -> None:
    """Pull both champions from the MLflow registry into the BentoML model store and build the Bento
    (bentofile.yaml: service, models, pinned packages, libgomp1); the Bento is labelled with the version
    of the policy in force."""
    from serving.bento import PackagingError, build_bento, package_champions

    policy, _ = _policy(policy_option)
    try:
        packaged = package_champions(policy)
        console.print(f"packaged the champions as BentoML model {packaged.model_tag}")
        bento = build_bento() if build else None
    except PackagingError as error:
        raise _fail(str(error)) from error
    if bento is not None:
        console.print(f"built Bento {bento}; `bentoml containerize {bento}` makes its image")
    _print_json_line({"model": packaged.model_tag, "bento": bento, **packaged.labels})


@app.command()
def doctor(
    end_run: Annotated[
        list[str] | None,
        typer.Option(
            "--end-run",
            metavar="RUN_ID",
            help="End this RUNNING run (repeat for several) after checking its owner no longer runs, e.g. "
            "one of another host; refused while its owner runs on this host.",
        ),
    ] = None,
) -> None:
    """List the MLflow runs that never finished, one line each (id, name, start, owner, what was done);
    end those whose process died on this host. Exit 1 when an --end-run was refused."""
    from training.tracking import RunNotEnded, end_unfinished_run, tracking_uri, unfinished_runs

    refused = False
    for run_id in end_run or []:
        try:
            print(end_unfinished_run(run_id).line())
        except RunNotEnded as error:
            console.print(f"[bold red]refused:[/] {error}")
            refused = True
    runs = unfinished_runs(end_abandoned=True)
    for run in runs:
        print(run.line())
    if not runs and not end_run:
        print(f"no unfinished MLflow run in the store at {tracking_uri()}")
    if refused:
        raise typer.Exit(code=1)


@flags_app.command("list")
def flags_list(
    village: Annotated[str | None, typer.Option(help="Only this village.")] = None,
    status: Annotated[str | None, typer.Option(help="Only flags in this status.")] = None,
    round_: Annotated[int | None, typer.Option("--round", help="Only this round.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
) -> None:
    """List flags from the flag store."""
    from store.cases import list_flags
    from store.database import create_schema, db_url, make_engine

    engine = make_engine(db_url())
    create_schema(engine)
    flags = list_flags(engine, village=village, status=status, round=round_)
    columns = ["id", "village_id", "household_id", "round", "category", "risk_tier", "status"]
    shown = flags[columns].head(limit).fillna({"risk_tier": "-"})  # no tier: insufficient data
    print(shown.to_string(index=False) if len(flags) else "no flags")


@flags_app.command("set")
def flags_set(
    flag_id: Annotated[int, typer.Argument(help="Flag id (from `povrisk flags list`).")],
    status: Annotated[
        str,
        typer.Argument(help="New status, the next in the monitoring procedure (e.g. verified, rejected)."),
    ],
    by: Annotated[str, typer.Option(help="Who made the decision (at most 200 characters).")],
    note: Annotated[str, typer.Option(help="What was found or done (at most 2,000 characters).")] = "",
) -> None:
    """Record a field decision on a flag (the history keeps every change)."""
    from store.cases import FlagConflict, set_status
    from store.database import create_schema, db_url, make_engine

    engine = make_engine(db_url())
    create_schema(engine)  # a fresh database gets the flag store's tables, and then has no such flag
    try:
        set_status(engine, flag_id, status, by=by, note=note)
    except (ValueError, FlagConflict) as error:  # IllegalTransition is a ValueError
        raise _fail(str(error)) from error
    except LookupError as error:  # FlagNotFound: a KeyError, whose str() would quote the message
        raise _fail(str(error.args[0]) if error.args else str(error)) from error
    print(f"flag {flag_id}: {status}")


@flags_app.command("notice")
def flags_notice(
    round_: Annotated[int, typer.Option("--round", help="Survey round whose flags are posted.")],
    out: Annotated[Path, typer.Option(help="CSV file to write (replaced atomically).")],
    village: Annotated[str | None, typer.Option(help="Only this village.")] = None,
    status: Annotated[str | None, typer.Option(help="Only flags in this status.")] = None,
) -> None:
    """Write the public-notice list as CSV: village, household, category, main cause, status
    (never names, ID-card numbers, scores or field notes; rejected flags only with --status rejected)."""
    from cli.output import write_atomically
    from monitoring.notice import public_notice
    from store.cases import list_flags
    from store.database import create_schema, db_url, make_engine

    engine = make_engine(db_url())
    create_schema(engine)
    flags = list_flags(engine, village=village, status=status, round=round_)
    if flags.empty:
        raise _fail(
            f"no flags in round {round_} (village: {village or 'any'}, status: {status or 'any'}); "
            "nothing written"
        )
    notice = public_notice(flags, include_rejected=status == "rejected")
    if notice.empty:
        raise _fail(f"every flag in round {round_} was rejected on a field visit; nothing written")
    write_atomically(out, lambda target: notice.to_csv(target, index=False))
    console.print(f"public notice of round {round_}: {len(notice):,} households written to {out}")


@import_app.command("costa-rica")
def import_costa_rica_survey(
    path: Annotated[
        Path, typer.Argument(help="The Costa Rica survey's train.csv (Kaggle / IDB, one row per person).")
    ],
    out: Annotated[Path, typer.Option(help="Survey folder to write (replaced atomically).")],
) -> None:
    """Import the Costa Rica household survey: households, members, regions as villages, Target labels;
    print the import log (persons, households, households without head, ...), one count a line."""
    from survey.adapters.costa_rica import CostaRicaFormatError, import_costa_rica
    from survey.io import write_survey
    from survey.validate import validate_survey

    try:
        imported = import_costa_rica(path)
    except CostaRicaFormatError as error:
        raise _fail(str(error)) from error
    report = validate_survey(imported.survey)
    if not report.ok:
        console.print(report.summary(), markup=False, soft_wrap=True)
        raise _fail(f"{path}: the imported survey does not match the canonical schema; nothing written")
    write_survey(imported.survey, out)
    for name, count in imported.log.items():
        print(f"{name}: {count}")
    console.print(f"wrote {imported.log['households']:,} households to {out}")


@app.command()
def ingest(
    data: Annotated[Path, typer.Argument(help="Survey folder (households, members, villages).")],
    county: Annotated[str, typer.Option(help="County the rounds belong to (the register's key).")],
    replace: Annotated[
        bool, typer.Option(help="Store rounds that differ from the register's as new versions (old kept).")
    ] = False,
    by: Annotated[str | None, typer.Option(help="Who ingests (default: the system user).")] = None,
    policy_option: PolicyFile = None,
) -> None:
    """Validate a survey (the report of `povrisk validate`: the schema and the policy) and append its
    rounds to the household register, all or nothing."""
    import getpass

    from features.policy_checks import check_against_policy
    from store.database import create_schema, db_url, make_engine
    from store.register import RegisterError, ingest_survey
    from survey.io import SurveyReadError, read_survey, survey_hash
    from survey.province import is_province, read_province_county
    from survey.validate import SurveyInvalid

    policy, policy_file = _policy(policy_option)
    try:
        survey = read_province_county(data, county) if is_province(data) else read_survey(data)
    except SurveyReadError as error:
        raise _fail(str(error)) from error
    engine = make_engine(db_url())
    create_schema(engine)
    try:
        result = ingest_survey(
            engine,
            survey,
            county,
            source=f"{data.resolve()} ({survey_hash(survey)})",
            by=by or getpass.getuser(),
            replace=replace,
            policy_check=check_against_policy(survey.households, policy, str(policy_file)),
        )
    except SurveyInvalid as error:
        print(error.report.summary())
        raise _fail(f"{data}: the survey is invalid; nothing was written to the register") from error
    except RegisterError as error:
        raise _fail(str(error)) from error
    for summary in result.rounds:
        print(_round_summary_line(county, summary))
    if not result.changed_anything:
        print(f"county {county}: the register already holds exactly these rounds; nothing changed")


def _round_summary_line(county: str, summary: Any) -> str:
    moved = (
        ""
        if summary.new_households is None
        else (
            f"; since round {summary.round - 1}: {summary.new_households:,} new, "
            f"{summary.missing_households:,} missing, {summary.changed_village:,} changed village, "
            f"{_count_or_dash(summary.changed_size)} changed size, "
            f"{_count_or_dash(summary.changed_status)} changed register status"
        )
    )
    missing = ", ".join(f"{block} {share:.1%}" for block, share in summary.missing_share.items())
    return (
        f"county {county} round {summary.round}: {summary.outcome}; {summary.households:,} households, "
        f"{summary.members:,} members{moved}; missing answers: {missing or 'none'}"
    )


def _count_or_dash(count: int | None) -> str:
    return "-" if count is None else f"{count:,}"


@app.command()
def rounds(
    county: Annotated[str | None, typer.Option(help="Only this county.")] = None,
    history: Annotated[bool, typer.Option(help="Every version, replaced ones included.")] = False,
) -> None:
    """What the household register holds: rounds, counts, when and by whom ingested, from which file."""
    from store.database import create_schema, db_url, make_engine
    from store.register import register_rounds

    engine = make_engine(db_url())
    create_schema(engine)
    held = register_rounds(engine, county, history=history)
    if held.empty:
        print("the register holds no rounds" + (f" of county {county}" if county else ""))
        return
    for row in held.itertuples(index=False):
        state = "" if row.current else f" (replaced {row.replaced_at:%Y-%m-%d %H:%M})"
        print(
            f"{row.county_id}\tround {row.round}\tversion {row.version}{state}\t"
            f"{row.households:,} households\t"
            f"{row.members:,} members\tingested {row.ingested_at:%Y-%m-%d %H:%M} by {row.ingested_by}\t"
            f"from {row.source}"
        )


@app.command()
def export(
    county: Annotated[str, typer.Option(help="County to export.")],
    out: Annotated[
        Path, typer.Option(help="Folder to write the canonical survey into (replaced atomically).")
    ],
    round_: Annotated[
        list[int] | None, typer.Option("--round", help="Only these rounds (repeat the option); default all.")
    ] = None,
) -> None:
    """Write a county's current rounds from the register as a canonical survey folder."""
    from store.database import create_schema, db_url, make_engine
    from store.register import RegisterError, read_register
    from survey.io import write_survey

    engine = make_engine(db_url())
    create_schema(engine)
    try:
        survey = read_register(engine, county, round_ or None)
    except RegisterError as error:
        raise _fail(str(error)) from error
    write_survey(survey, out)
    print(f"wrote county {county}: {len(survey.households):,} household rows to {out}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo county and flag lists.")] = Path("demo"),
    households: Annotated[int, typer.Option(min=200, help="Households in the demo county.")] = 5_000,
    policy_option: PolicyFile = None,
) -> None:
    """The main job end to end on the embedded defaults (see README); the simulated county is Chinese
    (yuan, rounds from 2014), so another policy must fit it."""
    from cli.demo import run_demo
    from features.policy import PolicyError

    _, policy_file = _policy(policy_option)
    try:
        run_demo(out, households=households, console=console, policy_file=policy_file)
    except PolicyError as error:
        raise _fail(str(error)) from error


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except Exception as error:
        # the last resort: a database error no command handled is one line, never an SQL traceback
        if not _is_database_error(error):
            raise
        _print_error(f"database error: {_database_error_line(error)}")
        raise SystemExit(1) from None


def _is_database_error(error: Exception) -> bool:
    database_errors = sys.modules.get("sqlalchemy.exc")  # not imported: no command touched a database
    return database_errors is not None and isinstance(error, database_errors.SQLAlchemyError)


if __name__ == "__main__":
    main()


@keys_app.command("add")
def keys_add(
    key_id: Annotated[str, typer.Option("--id", help="Who the key is for (logged and audited).")],
    role: Annotated[str, typer.Option(help="cadre, monitor or analyst.")],
    file: Annotated[Path, typer.Option(help="The key file (created when absent).")],
    village: Annotated[
        list[str] | None, typer.Option(help="A village a cadre key may score (repeat for several).")
    ] = None,
) -> None:
    """Make a new API key: its hash goes into the key file, the key is printed once (stdout), never stored."""
    from serving.keys import ROLES, KeyFileError, add_key

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    try:
        key = add_key(file, key_id, role, tuple(village or ()))  # type: ignore[arg-type]
    except KeyFileError as error:
        console.print(f"[bold red]refused:[/] {error}")
        raise typer.Exit(code=1) from error
    console.print(f"key {key_id} ({role}) added to {file}; give it to its holder now, it is not stored:")
    print(key)


@keys_app.command("list")
def keys_list(file: Annotated[Path, typer.Option(help="The key file.")]) -> None:
    """The keys of a key file: id, role, villages (never the keys; only their hashes are stored)."""
    from serving.keys import KeyFileError, read_key_file

    try:
        ring = read_key_file(file)
    except KeyFileError as error:
        console.print(f"[bold red]cannot read:[/] {error}")
        raise typer.Exit(code=1) from error
    for key in ring.keys:
        print(f"{key.key_id}\t{key.role}\t{','.join(sorted(key.villages))}")


audit_app = typer.Typer(
    help="The scoring service's audit trail: a household's recorded scores; retention.",
    invoke_without_command=True,
)
app.add_typer(audit_app, name="audit")


@audit_app.callback()
def audit(
    context: typer.Context,
    household: Annotated[
        str | None, typer.Option(help="The household whose recorded scores to show.")
    ] = None,
) -> None:
    """Every score the service gave a household (audit trail in the flag store's database), as CSV;
    `povrisk audit retain` applies the retention policy."""
    if context.invoked_subcommand is not None:
        return
    if household is None:
        raise _fail("give --household H (the household whose recorded scores to show), or `audit retain`")
    from monitoring.audit import household_audit
    from store.database import create_schema, db_url, make_engine

    engine = make_engine(db_url())
    create_schema(engine)
    trail = household_audit(engine, household)
    if trail.empty:
        console.print(f"no recorded score for household {household}")
        return
    print(trail.to_csv(index=False), end="")


@audit_app.command("retain")
def audit_retain(
    retention: Annotated[
        Path | None,
        typer.Option(help="Retention policy file; default: the shipped monitoring/retention.yaml."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Count what would be compacted and deleted; change nothing.")
    ] = False,
) -> None:
    """Apply the retention policy to the audit trail: every score kept for keep_every_score_days, older
    ones compacted to one row per household and day, compacted rows deleted after delete_after_days
    (when set). One transaction; prints what it did as JSON last."""
    from monitoring.retention import RetentionError, apply_retention, load_retention
    from store.database import create_schema, db_url, make_engine

    try:
        policy = load_retention(retention)
    except RetentionError as error:
        raise _fail(str(error)) from error
    engine = make_engine(db_url())
    create_schema(engine)
    result = apply_retention(engine, policy.audit, dry_run=dry_run)
    console.print(
        f"{'would compact' if dry_run else 'compacted'} {result.rows_compacted:,} score(s) of "
        f"{result.days_compacted:,} day(s) older than {result.compact_before[:10]} and "
        f"{'would delete' if dry_run else 'deleted'} {result.rows_deleted:,}; {result.rows_left:,} row(s) "
        f"left (retention policy {policy.version})"
    )
    _print_json_line({"dry_run": dry_run, "policy_version": policy.version, **result.as_dict()})
