"""A simulated county: a panel of households in the canonical schema plus the simulator's ground truth.

The county is grounded in the seed county of the project (631 administrative villages, ~155,000
households, ~500,000 people, poverty incidence falling from ~13% to ~8% and per-capita net income rising
from ~5,000 to ~8,100 yuan over five rounds, income moving from farming to migrant wages and business).
The rules of its world (poverty lines, wages, hazards of shocks, assistance) are data in
`county_world.yaml`.

How one round happens (`_advance`, the one transition used for the panel and for the ground truth):
1. assistance follows the registry left by last year's review: registered poor households are assisted;
   exited ones keep support for `support_rounds_after_exit` years ("摘帽不摘政策"), the last one flagged
   `assistance_ends`;
2. people age; shocks strike (serious illness, disability, accident, job loss, industry failure, a
   village disaster, schooling costs);
3. guarantees change (dangerous houses, unsafe water, children out of school, uninsured illness), failing
   mostly among low-income households and being fixed by assistance;
4. members choose migrant or local work; the household earns wages, farm income, business income,
   transfers (pensions, subsidies, assistance) and a little property income;
5. a household is truly poor when its per-capita net income is below the year's line or a guarantee fails
   (the policy's guarantees, `_judge_poverty`);
6. the year-end registry review ("dynamic adjustment") judges an error-prone assessment of the year:
   households assessed poor are registered, registered ones assessed at `exit_income_margin` lines or
   more (no failed guarantee seen) exit; this gives inclusion and exclusion errors of the registry.

A round's survey reports the registry after that round's review (`poverty_status`) and the assistance
received during the year (`receiving_assistance`), so a household identified at a review is assisted
from the next round on. One burn-in year before round 0 opens the registry (the 2014 identification
used 2013 incomes).

The truth table's `p_poor_next` is the share of `monte_carlo_draws` independent runs of step 1-5 for the
next year, from the household's true state, that end poor; the panel's next round is one more such run.
Survey noise (misreported incomes, missing answers, misreported categories) touches only the reported
households and members, never the truth. Each round a random `verification_share` of the households is
visited in the field (the register's sampled check): the survey's `verification` table holds what the
visit found, the true status.

Randomness is drawn per purpose and per year: the county's structure, each year's transition, and each
round's Monte Carlo runs, survey noise and field visits have their own stream (a numpy `SeedSequence` of
the seed keyed by purpose and year). A round therefore never depends on how many rounds follow it, which
is what lets `povrisk simulate --continue` append a round to a county written earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from survey.io import Survey
from survey.schema import (
    COOKING_FUELS,
    HEALTH_STATUSES,
    HOUSING_STRUCTURES,
    INCOME_COLUMNS,
    LABOUR_CAPACITIES,
    POVERTY_STATUSES,
    RELATIONS_TO_HEAD,
    SEXES,
    SHOCK_COLUMNS,
)

WORLD_FILE = Path(__file__).with_name("county_world.yaml")
MONTE_CARLO_ROWS_PER_CHUNK = 400_000  # household-draws advanced at once when computing p_poor_next
VILLAGES_PER_TOWNSHIP = 30
BURN_IN_YEARS = 1  # the year before round 0, whose review opens the registry (2013 incomes)
INITIAL_MIGRANT_SHARE = 0.35  # of adults aged 18-55 before the burn-in year
# Bump whenever the same settings give a different county (a folder's manifest records it; see
# survey/continuation.py).
SIMULATOR_VERSION = 2
# The purposes of the random streams (`_stream`): villages and households as first drawn, each year's
# transition, the Monte Carlo runs behind a round's p_poor_next, a round's survey noise, its field visits.
STRUCTURE, ADVANCE, MONTE_CARLO, SURVEY_NOISE, VERIFICATION = range(5)

NEVER_POOR, POOR, EXITED = (POVERTY_STATUSES.index(name) for name in ("never_poor", "poor", "exited"))
HEALTHY, CHRONIC, SERIOUS = (
    HEALTH_STATUSES.index(name) for name in ("healthy", "chronic", "serious_illness")
)
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class CountySettings:
    """What county to simulate: its size, how many yearly rounds, the seed, and how noisy the survey is.

    `survey_noise` scales every kind of reporting error; 0 makes the survey equal the truth exactly.
    """

    households: int = 155_000
    villages: int = 631
    rounds: int = 5
    seed: int = 0
    survey_noise: float = 1.0
    first_year: int = 2014
    monte_carlo_draws: int = 200

    def __post_init__(self) -> None:
        at_least = {"households": 1, "villages": 1, "rounds": 1, "monte_carlo_draws": 0}
        for name, minimum in at_least.items():
            if getattr(self, name) < minimum:
                raise ValueError(
                    f"CountySettings.{name} must be at least {minimum}, got {getattr(self, name)}"
                )
        if self.survey_noise < 0:
            raise ValueError(f"CountySettings.survey_noise must be >= 0, got {self.survey_noise}")


@dataclass(frozen=True)
class World:
    """The rules of the simulated county (see county_world.yaml for units and meaning)."""

    version: int
    reference_year: int
    poverty_lines: dict[int, float]
    poverty_line_growth_outside: float
    household_size_probabilities: tuple[float, ...]
    household_income_effect_sd: float
    village_income_effect_sd: float
    transitory_income_sd: float
    migrant_monthly_wage: float
    migrant_wage_growth: float
    migrant_entry_rate: float
    migrant_entry_rate_growth: float
    migrant_stay_rate: float
    local_wage: float
    local_wage_growth: float
    local_work_rate: float
    local_work_stay_rate: float
    crop_net_per_mu: float
    crop_growth: float
    livestock_net_per_unit: float
    livestock_growth: float
    production_cost_per_mu: float
    production_cost_per_livestock_unit: float
    disaster_crop_loss: float
    village_disaster_hazard: float
    business_start_rate: float
    business_median_net: float
    business_growth: float
    subsidy_per_capita: float
    subsidy_growth: float
    pension_per_elderly: float
    pension_growth: float
    disability_allowance: float
    assistance_share_of_line: float
    exited_support_share_of_line: float
    exit_income_margin: float
    identification_income_error_sd: float
    guarantee_failure_detection_rate: float
    pre_registry_programme_reach: float
    pre_registry_programme_gain: float
    support_rounds_after_exit: tuple[int, int]
    assisted_job_placement_rate: float
    assisted_capacity_gain: float
    serious_illness_rate: float
    serious_illness_age_slope: float
    disability_rate: float
    accident_rate: float
    job_loss_rate: float
    industry_failure_rate: float
    schooling_cost_rate: float
    illness_work_loss: float
    dangerous_house_rate: float
    dangerous_house_repair_rate: float
    unsafe_water_initial: float
    water_fix_rate: float
    dropout_rate: float
    medical_insurance_initial: float
    medical_insurance_enrol_rate: float
    pension_insurance_initial: float
    pension_insurance_enrol_rate: float
    guarantee_fix_improvement: float
    catastrophic_medical_share: float
    verification_share: float

    def poverty_line(self, year: int) -> float:
        """Yuan per person per year; outside the table, the nearest line grown at the outside rate."""
        if year in self.poverty_lines:
            return float(self.poverty_lines[year])
        nearest = min(self.poverty_lines, key=lambda known: abs(known - year))
        return float(self.poverty_lines[nearest] * (1 + self.poverty_line_growth_outside) ** (year - nearest))

    def grown(self, level: float, growth: float, year: int) -> float:
        """`level` (at the reference year) compounded at `growth` per year to `year`."""
        return level * (1 + growth) ** (year - self.reference_year)


def load_world(path: Path | None = None) -> World:
    """Read the world's rules from YAML (default: the county_world.yaml beside this module)."""
    raw: dict[str, Any] = yaml.safe_load((path or WORLD_FILE).read_text(encoding="utf-8"))
    expected = {field.name for field in fields(World)}
    if set(raw) != expected:
        missing, unknown = sorted(expected - set(raw)), sorted(set(raw) - expected)
        raise ValueError(f"world settings mismatch: missing {missing}, unknown {unknown}")
    raw["poverty_lines"] = {int(year): float(line) for year, line in raw["poverty_lines"].items()}
    raw["household_size_probabilities"] = tuple(float(p) for p in raw["household_size_probabilities"])
    raw["support_rounds_after_exit"] = tuple(int(n) for n in raw["support_rounds_after_exit"])
    return World(**raw)


@dataclass(frozen=True)
class CountyState:
    """Everything the next round depends on: household arrays, member arrays and village hazards.

    Members are sorted by household; `members["household"]` indexes into the household arrays and
    `households["village"]` into `village_hazard`.
    """

    households: Arrays
    members: Arrays
    village_hazard: np.ndarray

    @property
    def size(self) -> int:
        return len(self.households["village"])


# ---------------------------------------------------------------------------------------------- entry


def simulate_county(settings: CountySettings, world: World | None = None) -> Survey:
    """Simulate `settings.rounds` yearly rounds of a county; return the survey with villages and truth.

    Every draw comes from a stream named by its purpose and year (`_stream`), so no round depends on
    how many rounds follow it: the first R rounds of an (R+k)-round county are, table by table, the
    R-round county with the same settings.
    """
    world = world or load_world()
    structure_rng = _stream(settings.seed, STRUCTURE)
    villages = _make_villages(settings, structure_rng, world)
    state = _initial_state(settings, villages, structure_rng, world)
    for step, year in enumerate(range(settings.first_year - BURN_IN_YEARS, settings.first_year)):
        state = _advance(state, _stream(settings.seed, ADVANCE, step), year, world)  # opens the registry
    ids = _identifiers(state, settings)
    surveyed = []
    for round_ in range(settings.rounds):
        year = settings.first_year + round_
        state = _advance(state, _stream(settings.seed, ADVANCE, BURN_IN_YEARS + round_), year, world)
        surveyed.append(_surveyed_round(state, villages, ids, round_, settings, world))
    return Survey(
        households=pd.concat([one.households for one in surveyed], ignore_index=True),
        members=pd.concat([one.members for one in surveyed], ignore_index=True),
        villages=villages[["village_id", "township_id"]].copy(),
        truth=pd.concat([one.truth for one in surveyed], ignore_index=True),
        verification=pd.concat([one.verification for one in surveyed], ignore_index=True),
    )


def _stream(seed: int, purpose: int, step: int = 0) -> np.random.Generator:
    """The random stream of one purpose (`STRUCTURE`, `ADVANCE`, ...) and step (the year's index from the
    burn-in year for `ADVANCE`, the round for the others): the same for a round however many follow."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(purpose, step)))


def _surveyed_round(
    state: CountyState,
    villages: pd.DataFrame,
    ids: _Identifiers,
    round_: int,
    settings: CountySettings,
    world: World,
) -> Survey:
    """One round's tables: the survey as reported (with this round's noise), the truth and the visits."""
    year = settings.first_year + round_
    seed, draws = settings.seed, settings.monte_carlo_draws
    p_poor_next = _probability_poor_next(state, _stream(seed, MONTE_CARLO, round_), year + 1, world, draws)
    truth = _truth_rows(state, ids, round_, p_poor_next)
    exact = Survey(
        households=_household_rows(state, villages, ids, round_, year),
        members=_member_rows(state, ids, round_),
        truth=truth,
        verification=_verification_sample(truth, world, _stream(seed, VERIFICATION, round_)),
    )
    return _with_survey_noise(exact, settings.survey_noise, _stream(seed, SURVEY_NOISE, round_))


# ------------------------------------------------------------------------------------------ villages


def _make_villages(settings: CountySettings, rng: np.random.Generator, world: World) -> pd.DataFrame:
    """Village effects: distances (km), remoteness, income effect, disaster hazard, unsafe-water share."""
    n = settings.villages
    road_km = np.clip(rng.lognormal(np.log(2.0), 0.9, n), 0.0, 60.0)
    remoteness = (np.log1p(road_km) - np.log1p(road_km).mean()) / max(np.log1p(road_km).std(), 1e-9)
    sd = world.village_income_effect_sd
    return pd.DataFrame(
        {
            "village_id": _ids("V", np.arange(1, n + 1), 4),
            "township_id": _ids("T", np.arange(n) // VILLAGES_PER_TOWNSHIP + 1, 2),
            "distance_road_km": road_km,
            "distance_market_km": np.clip(road_km + rng.lognormal(np.log(5.0), 0.6, n), 0.0, 200.0),
            "distance_clinic_km": np.clip(rng.lognormal(np.log(2.5), 0.7, n), 0.1, 100.0),
            "remoteness": remoteness,
            "income_effect": np.exp(rng.normal(-sd * sd / 2, sd, n) - 0.06 * remoteness),
            "disaster_hazard": np.clip(
                world.village_disaster_hazard * np.exp(rng.normal(-0.125, 0.5, n) + 0.3 * remoteness),
                0.0,
                0.4,
            ),
            "unsafe_water_share": np.clip(world.unsafe_water_initial * np.exp(0.8 * remoteness), 0.0, 0.2),
            "size_weight": rng.lognormal(0.0, 0.5, n),
        }
    )


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return (prefix + pd.Series(numbers).astype(str).str.zfill(width)).to_numpy(dtype=object)


# ------------------------------------------------------------------------------------- initial state


def _initial_state(
    settings: CountySettings, villages: pd.DataFrame, rng: np.random.Generator, world: World
) -> CountyState:
    n = settings.households
    weights = villages["size_weight"].to_numpy()
    village = rng.choice(len(villages), size=n, p=weights / weights.sum())
    probabilities = np.asarray(world.household_size_probabilities)
    size = rng.choice(np.arange(1, len(probabilities) + 1), size=n, p=probabilities / probabilities.sum())
    members = _initial_members(size, rng)
    income_effect = np.exp(rng.normal(0.0, world.household_income_effect_sd, n))
    head_education = members["education"][np.r_[0, np.cumsum(size)[:-1]]]
    income_effect *= np.exp(0.03 * (head_education - 7.0))
    low = income_effect < np.quantile(income_effect, 0.2)
    remoteness = villages["remoteness"].to_numpy()[village]
    land = size * rng.lognormal(np.log(1.3), 0.5, n) * np.exp(0.15 * remoteness)
    has_livestock = rng.random(n) < 0.4
    has_business = rng.random(n) < 0.07 * np.sqrt(income_effect)
    households: Arrays = {
        "village": village,
        "size": size.astype(float),
        "income_effect": _after_earlier_programmes(
            income_effect * villages["income_effect"].to_numpy()[village], world
        ),
        "road_km": villages["distance_road_km"].to_numpy()[village],
        "arable_land_mu": np.round(land, 1),
        "livestock_units": np.where(has_livestock, np.round(rng.lognormal(np.log(2.0), 0.6, n), 1), 0.0),
        "has_business": has_business,
        "business_scale": rng.lognormal(0.0, 0.6, n),
        "housing_area_m2": np.round(size * 28 * rng.lognormal(0, 0.3, n) * np.sqrt(income_effect), 0),
        "housing_structure": _draw_structure(income_effect, rng),
        "dangerous_house": (rng.random(n) < np.where(low, 0.05, 0.002)).astype(float),
        "safe_drinking_water": (
            rng.random(n) >= villages["unsafe_water_share"].to_numpy()[village] * np.where(low, 4.0, 0.1)
        ).astype(float),
        "electricity": (rng.random(n) >= np.where(low, 0.02, 0.002)).astype(float),
        "cooking_fuel": rng.choice(len(COOKING_FUELS), size=n, p=[0.15, 0.2, 0.05, 0.2, 0.38, 0.02]),
        "durable_assets": rng.poisson(2.0 * np.sqrt(income_effect) * np.sqrt(size)).astype(float),
        "medical_insurance": (
            rng.random(n)
            < np.where(low, world.medical_insurance_initial - 0.15, world.medical_insurance_initial + 0.02)
        ).astype(float),
        "pension_insurance": (rng.random(n) < world.pension_insurance_initial).astype(float),
        "debt": np.where(rng.random(n) < 0.2, rng.lognormal(np.log(8000), 0.8, n), 0.0),
        "status": np.full(n, NEVER_POOR),
        "support_left": np.zeros(n, dtype=int),
        "receiving_assistance": np.zeros(n),
        "assistance_ends": np.zeros(n),
        "poor": np.zeros(n),
        "income_to_line": np.full(n, np.inf),
        "low_income": low.astype(float),
    }
    return CountyState(households, members, villages["disaster_hazard"].to_numpy())


def _after_earlier_programmes(income_effect: np.ndarray, world: World) -> np.ndarray:
    """Earning effects raised by the programmes before the registry for the lowest-effect households."""
    reached = income_effect < np.quantile(income_effect, world.pre_registry_programme_reach)
    return income_effect * np.where(reached, 1 + world.pre_registry_programme_gain, 1.0)


def _draw_structure(income_effect: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Better-off households live in sturdier houses (codes index HOUSING_STRUCTURES)."""
    score = np.log(income_effect) + rng.normal(0, 0.6, len(income_effect))
    return np.digitize(-score, [-0.9, -0.1, 0.6, 1.1]).astype(int)


def _initial_members(size: np.ndarray, rng: np.random.Generator) -> Arrays:
    """Members laid out household by household: a head, often a spouse, then children, parents, ..."""
    household = np.repeat(np.arange(len(size)), size)
    starts = np.r_[0, np.cumsum(size)[:-1]]
    position = np.arange(len(household)) - starts[household]
    n = len(household)
    head_age = np.clip(rng.normal(50, 12, len(size)), 22, 90)[household]
    old_head = head_age >= 55
    draw = rng.random(n)
    relation = np.select(
        [
            position == 0,
            (position == 1) & (draw < 0.85),
            (position == 1) & (head_age < 40),
            position == 1,
            old_head & (draw < 0.5),
            old_head & (draw < 0.65),
            old_head,
            draw < 0.8,
            draw < 0.95,
            draw < 0.98,
        ],
        [
            RELATIONS_TO_HEAD.index(name)
            for name in (
                "head",
                "spouse",
                "parent",
                "child",
                "child",
                "child_in_law",
                "grandchild",
                "child",
                "parent",
                "sibling",
            )
        ],
        default=RELATIONS_TO_HEAD.index("other"),
    )
    age_offset = np.select(
        [
            relation == RELATIONS_TO_HEAD.index(name)
            for name in ("head", "spouse", "child", "child_in_law", "grandchild", "parent", "sibling")
        ],
        [
            0.0,
            rng.normal(-2, 4, n),
            -rng.normal(27, 4, n),
            -rng.normal(26, 4, n),
            -rng.normal(52, 5, n),
            rng.normal(27, 4, n),
            rng.normal(0, 6, n),
        ],
        default=rng.uniform(-40, 10, n),
    )
    age = np.round(np.clip(head_age + age_offset, 0, 100))
    head_male = (rng.random(len(size)) < 0.85)[household]
    male = np.where(relation == 0, head_male, np.where(relation == 1, ~head_male, rng.random(n) < 0.5))
    adult_education = np.clip(np.round(rng.normal(9.5 - 0.12 * np.maximum(age - 30, 0), 3.0)), 0, 16)
    in_school = _school_attendance(age, np.zeros(n, dtype=bool), rng)
    education = np.where(age < 22, np.clip(age - 6, 0, adult_education), adult_education)
    health_draw = rng.random(n)
    serious_share = 0.004 + 0.0004 * np.maximum(age - 40, 0)
    chronic_share = 0.04 + 0.006 * np.maximum(age - 40, 0)
    health = np.where(
        health_draw < serious_share,
        SERIOUS,
        np.where(health_draw < serious_share + chronic_share, CHRONIC, HEALTHY),
    )
    return {
        "household": household,
        "position": position,
        "relation": relation,
        "male": male,
        "age": age,
        "education": education,
        "in_school": in_school,
        "health": health,
        "disability": (rng.random(n) < 0.015 + 0.002 * np.maximum(age - 50, 0)).astype(float),
        "skill": rng.lognormal(-0.045, 0.3, n) * (1 + 0.04 * (adult_education - 9)),
        "migrant": (age >= 18) & (age <= 55) & (rng.random(n) < INITIAL_MIGRANT_SHARE),
        "migrant_work_months": np.zeros(n),
        "local_worker": rng.random(n) < 0.5,
        "usual_migrant_months": np.clip(np.round(rng.normal(9.0, 2.0, n)), 3, 12),
    }


def _school_attendance(age: np.ndarray, was_out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Schooling by age for children not held back by the household's hardship (handled in _advance)."""
    rate = np.select([age < 6, age <= 15, age <= 18, age <= 22], [0.0, 1.0, 0.7, 0.25], default=0.0)
    return ((rng.random(len(age)) < rate) & ~(was_out & (age > 15))).astype(float)


# ------------------------------------------------------------------------------------- one round


def _advance(state: CountyState, rng: np.random.Generator, year: int, world: World) -> CountyState:
    """The county one year later: registration, ageing, shocks, guarantees, work, income and truth.

    Pure apart from drawing from `rng`; used for the panel and, replicated, for the Monte Carlo truth.
    """
    households = _enrol(state.households, world)
    members, health_shocks = _age_and_fall_ill(state.members, households, rng, world)
    shocks = {**health_shocks, **_household_shocks(state, households, members, rng, world)}
    households = _update_guarantees(households, members, shocks, rng, world, year)
    members = _update_schooling(members, households, shocks, rng, world, year)
    members = _choose_work(members, households, shocks, rng, world, year)
    households = _earn(households, members, shocks, state.village_hazard, rng, world, year)
    judged = _judge_poverty(households, members, world, year)
    return CountyState(_review(judged, rng, world), members, state.village_hazard)


def _enrol(households: Arrays, world: World) -> Arrays:
    """Who is assisted this year, from the registry left by last year's review.

    Registered poor households are assisted (and gain earning capacity); exited households keep
    support while `support_left` (years, this one included) lasts. `assistance_ends` flags the last
    supported year. `receiving_assistance` is what the round's survey reports: assistance received
    during the year, so a household identified at this year's review is assisted from next year.
    """
    status, support_left = households["status"], households["support_left"]
    supported = (status == EXITED) & (support_left > 0)
    capacity_gain = np.where(status == POOR, 1 + world.assisted_capacity_gain, 1.0)
    return {
        **households,
        "income_effect": households["income_effect"] * capacity_gain,
        "receiving_assistance": ((status == POOR) | supported).astype(float),
        "assistance_ends": (supported & (support_left == 1)).astype(float),
    }


def _review(households: Arrays, rng: np.random.Generator, world: World) -> Arrays:
    """The year-end registry review ("dynamic adjustment"), on an error-prone assessment of the year.

    The assessment sees per-capita income with a multiplicative log-normal error
    (`identification_income_error_sd`) and each failed guarantee with probability
    `guarantee_failure_detection_rate`; the same assessment drives entries and exits, which is what
    produces both inclusion errors (non-poor households registered or kept) and exclusion errors (poor
    households missed). Rules:
    - a never-poor household assessed poor is registered (`poor`);
    - a registered household exits once assessed at or above `exit_income_margin` lines with no failed
      guarantee seen; its support then lasts `support_rounds_after_exit` more years;
    - an exited household assessed poor is registered again (relapse, "返贫").
    The status rows of a round's survey are the registry after that round's review.
    """
    n, status = len(households["village"]), households["status"]
    error_sd = world.identification_income_error_sd
    assessed_ratio = households["income_to_line"] * rng.lognormal(-error_sd * error_sd / 2, error_sd, n)
    failure_seen = (households["guarantee_fails"] == 1) & (
        rng.random(n) < world.guarantee_failure_detection_rate
    )
    assessed_poor = (assessed_ratio < 1.0) | failure_seen
    exits = (status == POOR) & ~failure_seen & (assessed_ratio >= world.exit_income_margin)
    enters = (status != POOR) & assessed_poor
    low, high = world.support_rounds_after_exit
    support_left = np.select(
        [exits, status == EXITED],
        [rng.integers(low, high + 1, n), np.maximum(households["support_left"] - 1, 0)],
        default=0,
    )
    new_status = np.select([enters, exits], [POOR, EXITED], default=status)
    return {
        **households,
        "status": new_status,
        "support_left": np.where(new_status == EXITED, support_left, 0),
    }


def _age_and_fall_ill(
    members: Arrays, households: Arrays, rng: np.random.Generator, world: World
) -> tuple[Arrays, Arrays]:
    """Members age a year; some fall seriously ill or become disabled; the seriously ill mostly recover."""
    n, age = len(members["age"]), members["age"] + 1
    falls_ill = rng.random(n) < world.serious_illness_rate + world.serious_illness_age_slope * np.maximum(
        age - 45, 0
    )
    recovers = (members["health"] == SERIOUS) & (rng.random(n) < 0.6)
    becomes_chronic = (members["health"] == HEALTHY) & (
        rng.random(n) < 0.004 + 0.0006 * np.maximum(age - 40, 0)
    )
    health = np.select(
        [falls_ill, recovers, becomes_chronic], [SERIOUS, CHRONIC, CHRONIC], default=members["health"]
    )
    becomes_disabled = (members["disability"] == 0) & (
        rng.random(n) < world.disability_rate + 0.0003 * np.maximum(age - 50, 0)
    )
    count = len(households["village"])
    shocks = {
        "shock_serious_illness": _any_by_household(falls_ill, members["household"], count),
        "shock_disability": _any_by_household(becomes_disabled, members["household"], count),
    }
    disability = np.maximum(members["disability"], becomes_disabled.astype(float))
    return {**members, "age": age, "health": health, "disability": disability}, shocks


def _any_by_household(flags: np.ndarray, household: np.ndarray, count: int) -> np.ndarray:
    return (np.bincount(household, weights=flags.astype(float), minlength=count) > 0).astype(float)


def _sum_by_household(values: np.ndarray, household: np.ndarray, count: int) -> np.ndarray:
    return np.bincount(household, weights=values.astype(float), minlength=count)


def _household_shocks(
    state: CountyState, households: Arrays, members: Arrays, rng: np.random.Generator, world: World
) -> Arrays:
    """Accident, job loss, industry failure, village disaster, schooling cost: 0/1 per household."""
    n = len(households["village"])
    had_migrant = _any_by_household(state.members["migrant"], members["household"], n) == 1
    in_upper_school = (members["in_school"] == 1) & (members["age"] >= 15)
    has_upper_student = _any_by_household(in_upper_school, members["household"], n) == 1
    has_enterprise = (households["livestock_units"] > 0) | households["has_business"]
    village_disaster = rng.random(len(state.village_hazard)) < state.village_hazard
    return {
        "shock_accident": (rng.random(n) < world.accident_rate).astype(float),
        "shock_job_loss": (had_migrant & (rng.random(n) < world.job_loss_rate)).astype(float),
        "shock_industry_failure": (has_enterprise & (rng.random(n) < world.industry_failure_rate)).astype(
            float
        ),
        "shock_disaster": village_disaster[households["village"]].astype(float),
        "shock_schooling_cost": (has_upper_student & (rng.random(n) < world.schooling_cost_rate)).astype(
            float
        ),
    }


def _update_guarantees(
    households: Arrays, members: Arrays, shocks: Arrays, rng: np.random.Generator, world: World, year: int
) -> Arrays:
    """Houses fall into disrepair (disasters, low income) and get fixed; water and insurance improve."""
    n = len(households["village"])
    low = households["low_income"] == 1
    assisted = households["receiving_assistance"] == 1
    improvement = (1 + world.guarantee_fix_improvement) ** max(year - world.reference_year, 0)
    repair = np.minimum(np.where(assisted, 0.8, world.dangerous_house_repair_rate) * improvement, 0.95)
    new_danger_rate = (
        world.dangerous_house_rate * np.where(low, 5.0, 0.2) * (1 + 4 * shocks["shock_disaster"])
    )
    dangerous = np.where(
        households["dangerous_house"] == 1,
        rng.random(n) >= repair,
        rng.random(n) < new_danger_rate / improvement,
    )
    water_fix = np.minimum(np.where(assisted, 0.8, world.water_fix_rate) * improvement, 0.95)
    safe_water = np.where(
        households["safe_drinking_water"] == 1, 1.0, (rng.random(n) < water_fix).astype(float)
    )
    enrol = np.minimum(world.medical_insurance_enrol_rate * improvement, 0.95)
    insured = (households["medical_insurance"] == 1) | assisted | (rng.random(n) < enrol)
    lapses = low & ~assisted & (rng.random(n) < 0.01)
    pension = (households["pension_insurance"] == 1) | (rng.random(n) < world.pension_insurance_enrol_rate)
    switch_fuel = np.isin(households["cooking_fuel"], [3, 4]) & (rng.random(n) < 0.06)
    fuel = np.where(switch_fuel, rng.choice([0, 1], size=n, p=[0.4, 0.6]), households["cooking_fuel"])
    electricity = np.maximum(households["electricity"], (rng.random(n) < 0.5 * improvement).astype(float))
    structure = households["housing_structure"]
    rebuilt = (households["dangerous_house"] == 1) & ~dangerous
    return {
        **households,
        "dangerous_house": dangerous.astype(float),
        "housing_structure": np.where(rebuilt, np.minimum(structure, 1), structure),
        "safe_drinking_water": safe_water,
        "medical_insurance": (insured & ~lapses).astype(float),
        "pension_insurance": pension.astype(float),
        "cooking_fuel": fuel,
        "electricity": electricity,
    }


def _update_schooling(
    members: Arrays, households: Arrays, shocks: Arrays, rng: np.random.Generator, world: World, year: int
) -> Arrays:
    """Children go to school by age; hardship (low income, schooling costs) keeps a few out."""
    household, age = members["household"], members["age"]
    attending = _school_attendance(age, members["in_school"] == 0, rng) == 1
    low = households["low_income"][household] == 1
    assisted = households["receiving_assistance"][household] == 1
    dropout = (
        world.dropout_rate
        * np.where(low, 8.0, 1.0)
        * (1 + 2 * shocks["shock_schooling_cost"][household])
        * np.where(assisted, 0.2, 1.0)
        * np.where((members["in_school"] == 0) & (age > 7) & (age <= 15), 40.0, 1.0)
        / (1 + world.guarantee_fix_improvement) ** max(year - world.reference_year, 0)
    )
    in_school = attending & ~(rng.random(len(age)) < np.minimum(dropout, 0.9))
    education = np.where(
        in_school, np.maximum(members["education"], np.minimum(age - 6, 22)), members["education"]
    )
    return {**members, "in_school": in_school.astype(float), "education": education}


def _labour_capacity(
    age: np.ndarray, health: np.ndarray, disability: np.ndarray, in_school: np.ndarray, education: np.ndarray
) -> np.ndarray:
    """Index into LABOUR_CAPACITIES: none (child, student, very old), lost, weak, skilled or ordinary."""
    return np.select(
        [
            (age < 16) | (age >= 75) | (in_school == 1),
            (health == SERIOUS) | ((disability == 1) & (age >= 60)),
            (health == CHRONIC) | (disability == 1) | (age >= 65),
            education >= 12,
        ],
        [LABOUR_CAPACITIES.index(name) for name in ("none", "lost", "weak", "skilled")],
        default=LABOUR_CAPACITIES.index("ordinary"),
    )


def _choose_work(
    members: Arrays, households: Arrays, shocks: Arrays, rng: np.random.Generator, world: World, year: int
) -> Arrays:
    """Capable adults aged 18-55 migrate (staying on, or starting); job loss cuts migrant months."""
    household, age = members["household"], members["age"]
    capacity = _labour_capacity(
        age, members["health"], members["disability"], members["in_school"], members["education"]
    )
    capable = np.isin(capacity, [LABOUR_CAPACITIES.index("skilled"), LABOUR_CAPACITIES.index("ordinary")])
    road_access = np.exp(-households["road_km"][household] / 25.0)
    entry = (
        world.migrant_entry_rate + world.migrant_entry_rate_growth * (year - world.reference_year)
    ) * road_access + world.assisted_job_placement_rate * households["receiving_assistance"][household]
    caring = shocks["shock_serious_illness"][household] == 1
    rate = np.where(members["migrant"], world.migrant_stay_rate, entry) * np.where(caring, 0.5, 1.0)
    migrant = capable & (age >= 18) & (age <= 55) & (rng.random(len(age)) < rate)
    months = members["usual_migrant_months"]
    months = np.where(shocks["shock_job_loss"][household] == 1, np.round(months * 0.4), months)
    leave_rate = 1 - world.local_work_stay_rate
    local_entry = leave_rate * world.local_work_rate / (1 - world.local_work_rate)
    local_worker = rng.random(len(age)) < np.where(
        members["local_worker"], world.local_work_stay_rate, local_entry
    )
    return {
        **members,
        "migrant": migrant,
        "migrant_work_months": np.where(migrant, months, 0.0),
        "labour_capacity": capacity,
        "local_worker": local_worker & ~migrant,
    }


def _earn(
    households: Arrays,
    members: Arrays,
    shocks: Arrays,
    village_hazard: np.ndarray,
    rng: np.random.Generator,
    world: World,
    year: int,
) -> Arrays:
    """The year's five income components, production, medical and schooling spending, and debt."""
    n, household, age = len(households["village"]), members["household"], members["age"]
    effect = households["income_effect"]
    sd = world.transitory_income_sd

    def transitory(spread: float = sd) -> np.ndarray:
        return rng.lognormal(-spread * spread / 2, spread, n)

    capacity = members["labour_capacity"]
    local_share = (
        np.select(
            [
                np.isin(capacity, [LABOUR_CAPACITIES.index("skilled"), LABOUR_CAPACITIES.index("ordinary")]),
                capacity == LABOUR_CAPACITIES.index("weak"),
            ],
            [1.0, 0.4],
            default=0.0,
        )
        * (~members["migrant"])
        * (age >= 16)
        * (age < 70)
    )
    works_locally = members["local_worker"]
    migrant_pay = members["migrant_work_months"] * world.grown(
        world.migrant_monthly_wage, world.migrant_wage_growth, year
    )
    local_pay = works_locally * local_share * world.grown(world.local_wage, world.local_wage_growth, year)
    work_loss = 1 - world.illness_work_loss * shocks["shock_serious_illness"] - 0.3 * shocks["shock_accident"]
    wages = _sum_by_household((migrant_pay + local_pay) * members["skill"], household, n) * effect
    wages = wages * work_loss * transitory()

    farm_hands = _sum_by_household(local_share, household, n)
    labour_factor = 0.4 + 0.6 * np.minimum(farm_hands / 2.0, 1.0)
    crops = (
        households["arable_land_mu"]
        * world.grown(world.crop_net_per_mu, world.crop_growth, year)
        * labour_factor
        * (1 - world.disaster_crop_loss * shocks["shock_disaster"])
    )
    failed = shocks["shock_industry_failure"] == 1
    livestock = (
        households["livestock_units"]
        * world.grown(world.livestock_net_per_unit, world.livestock_growth, year)
        * np.where(failed, -0.3, 1.0)
    )
    agriculture = (crops + livestock) * np.sqrt(effect) * transitory()

    educated = _sum_by_household((members["education"] >= 9) & (age >= 18) & (age < 60), household, n) > 0
    starts = ~households["has_business"] & (
        rng.random(n) < world.business_start_rate * (1 + educated) * np.sqrt(effect)
    )
    closes = households["has_business"] & failed & (rng.random(n) < 0.3)
    has_business = (households["has_business"] | starts) & ~closes
    business = (
        has_business
        * households["business_scale"]
        * effect
        * world.grown(world.business_median_net, world.business_growth, year)
        * np.where(failed, -0.1, 1.0)
        * transitory(1.5 * sd)
    )

    elderly = _sum_by_household(age >= 60, household, n)
    disabled = _sum_by_household(members["disability"], household, n)
    line = world.poverty_line(year)
    support_share = np.where(
        households["status"] == POOR, world.assistance_share_of_line, world.exited_support_share_of_line
    )
    transfers = (
        households["size"] * world.grown(world.subsidy_per_capita, world.subsidy_growth, year)
        + elderly * world.grown(world.pension_per_elderly, world.pension_growth, year)
        + disabled * world.disability_allowance
        + households["receiving_assistance"] * support_share * line * households["size"]
    )
    land_rented_out = households["arable_land_mu"] * (1 - labour_factor) * 150
    property_income = land_rented_out + rng.exponential(80, n) * np.sqrt(effect)

    production = (
        households["arable_land_mu"] * world.production_cost_per_mu
        + households["livestock_units"] * world.production_cost_per_livestock_unit
        + np.maximum(business, 0) * 0.25
    ) * world.grown(1.0, 0.03, year)
    seriously_ill = _sum_by_household(members["health"] == SERIOUS, household, n)
    chronic = _sum_by_household(members["health"] == CHRONIC, household, n)
    out_of_pocket = np.where(households["medical_insurance"] == 1, 0.45, 1.0)
    medical = (
        seriously_ill * rng.lognormal(np.log(12000), 0.6, n)
        + chronic * 900
        + shocks["shock_accident"] * rng.lognormal(np.log(3000), 0.7, n)
    ) * out_of_pocket
    school_fee = np.select([age <= 15, age <= 18], [400.0, 3000.0], default=8000.0) * members["in_school"]
    schooling = _sum_by_household(school_fee, household, n) * world.grown(1.0, 0.05, year) + shocks[
        "shock_schooling_cost"
    ] * rng.lognormal(np.log(6000), 0.5, n)
    net_income = wages + agriculture + business + transfers + property_income
    shortfall = np.maximum(medical + schooling - 0.25 * np.maximum(net_income, 0), 0)
    debt = np.maximum(households["debt"] * 0.8 + shortfall, 0)
    return {
        **households,
        "has_business": has_business,
        "income_wages": wages,
        "income_agriculture_net": agriculture,
        "income_business": business,
        "income_transfers": transfers,
        "income_property": property_income,
        "production_costs": production,
        "medical_expenses": medical,
        "schooling_expenses": schooling,
        "debt": debt,
        "durable_assets": households["durable_assets"] + (rng.random(n) < 0.15 * np.sqrt(effect)),
        **shocks,
    }


def _judge_poverty(households: Arrays, members: Arrays, world: World, year: int) -> Arrays:
    """Truly poor: per-capita net income below the year's line, or one of the guarantees fails.

    The guarantees are the policy's (`features.deprivation`): a dangerous house, no safe drinking water,
    a child aged 7-15 out of school, no basic medical insurance, or a seriously ill member whose
    out-of-pocket medical expenses exceed `catastrophic_medical_share` of net income. With the same rule
    on both sides, a survey without noise labels every household exactly as its truth.
    """
    n, household = len(households["village"]), members["household"]
    net_income = sum(
        households[column]
        for column in (
            "income_wages",
            "income_agriculture_net",
            "income_business",
            "income_transfers",
            "income_property",
        )
    )
    per_capita = net_income / households["size"]
    line = world.poverty_line(year)
    child_out_of_school = _any_by_household(
        (members["age"] >= 7) & (members["age"] <= 15) & (members["in_school"] == 0), household, n
    )
    seriously_ill = _any_by_household(members["health"] == SERIOUS, household, n) == 1
    catastrophic_spending = seriously_ill & (
        households["medical_expenses"] > world.catastrophic_medical_share * np.maximum(net_income, 0.0)
    )
    guarantee_fails = (
        (households["dangerous_house"] == 1)
        | (households["safe_drinking_water"] == 0)
        | (child_out_of_school == 1)
        | (households["medical_insurance"] == 0)
        | catastrophic_spending
    )
    return {
        **households,
        "per_capita_net_income": per_capita,
        "guarantee_fails": guarantee_fails.astype(float),
        "income_to_line": per_capita / line,
        "poor": ((per_capita < line) | guarantee_fails).astype(float),
        "low_income": (per_capita < 1.5 * line).astype(float),
    }


# ------------------------------------------------------------------------------------- ground truth


def _probability_poor_next(
    state: CountyState, rng: np.random.Generator, year: int, world: World, draws: int
) -> np.ndarray:
    """Share of `draws` independent next-year transitions, from each household's state, that end poor."""
    n = state.size
    if draws <= 0:
        return np.full(n, np.nan)
    chunk = max(1, MONTE_CARLO_ROWS_PER_CHUNK // draws)
    member_starts = np.searchsorted(state.members["household"], np.arange(n + 1))
    shares = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        part = _slice_households(state, start, stop, member_starts)
        future = _advance(_replicate(part, draws), rng, year, world)
        shares.append(future.households["poor"].reshape(draws, stop - start).mean(axis=0))
    return np.concatenate(shares)


def _slice_households(state: CountyState, start: int, stop: int, member_starts: np.ndarray) -> CountyState:
    first, last = member_starts[start], member_starts[stop]
    members = {name: values[first:last] for name, values in state.members.items()}
    members["household"] = members["household"] - start
    households = {name: values[start:stop] for name, values in state.households.items()}
    return CountyState(households, members, state.village_hazard)


def _replicate(state: CountyState, draws: int) -> CountyState:
    """`draws` independent copies of the county, side by side (each with its own villages)."""
    n, villages = state.size, len(state.village_hazard)
    households = {name: np.tile(values, draws) for name, values in state.households.items()}
    households["village"] = households["village"] + np.repeat(np.arange(draws) * villages, n)
    members = {name: np.tile(values, draws) for name, values in state.members.items()}
    members["household"] = members["household"] + np.repeat(
        np.arange(draws) * n, len(state.members["household"])
    )
    return CountyState(households, members, np.tile(state.village_hazard, draws))


# ------------------------------------------------------------------------------------------ output


@dataclass(frozen=True)
class _Identifiers:
    household_id: np.ndarray
    member_id: np.ndarray


def _identifiers(state: CountyState, settings: CountySettings) -> _Identifiers:
    width = max(6, len(str(settings.households)))
    household_id = _ids("H", np.arange(1, state.size + 1), width)
    member_suffix = pd.Series(state.members["position"] + 1).astype(str).str.zfill(2)
    member_id = (pd.Series(household_id[state.members["household"]]) + "-" + member_suffix).to_numpy(
        dtype=object
    )
    return _Identifiers(household_id, member_id)


def _household_rows(
    state: CountyState, villages: pd.DataFrame, ids: _Identifiers, round_: int, year: int
) -> pd.DataFrame:
    h = state.households
    village = h["village"]
    return pd.DataFrame(
        {
            "household_id": ids.household_id,
            "village_id": villages["village_id"].to_numpy()[village],
            "round": round_,
            "survey_year": year,
            **{
                column: h[column].astype(float)
                for column in (
                    "income_wages",
                    "income_agriculture_net",
                    "income_business",
                    "income_transfers",
                    "income_property",
                    "production_costs",
                    "medical_expenses",
                    "schooling_expenses",
                    "debt",
                    "arable_land_mu",
                    "livestock_units",
                    "housing_area_m2",
                )
            },
            "housing_structure": np.asarray(HOUSING_STRUCTURES, dtype=object)[h["housing_structure"]],
            "dangerous_house": h["dangerous_house"],
            "safe_drinking_water": h["safe_drinking_water"],
            "electricity": h["electricity"],
            "cooking_fuel": np.asarray(COOKING_FUELS, dtype=object)[h["cooking_fuel"]],
            **{
                column: villages[column].to_numpy()[village]
                for column in ("distance_road_km", "distance_market_km", "distance_clinic_km")
            },
            "durable_assets": h["durable_assets"].astype(float),
            "medical_insurance": h["medical_insurance"],
            "pension_insurance": h["pension_insurance"],
            **{column: h[column] for column in SHOCK_COLUMNS},
            "poverty_status": np.asarray(POVERTY_STATUSES, dtype=object)[h["status"]],
            "receiving_assistance": h["receiving_assistance"],
            "assistance_ends": h["assistance_ends"],
        }
    )


def _member_rows(state: CountyState, ids: _Identifiers, round_: int) -> pd.DataFrame:
    m = state.members
    return pd.DataFrame(
        {
            "household_id": ids.household_id[m["household"]],
            "member_id": ids.member_id,
            "round": round_,
            "relation_to_head": np.asarray(RELATIONS_TO_HEAD, dtype=object)[m["relation"]],
            "sex": np.where(m["male"], SEXES[0], SEXES[1]).astype(object),
            "age": m["age"].astype(float),
            "education_years": m["education"].astype(float),
            "in_school": m["in_school"].astype(float),
            "health_status": np.asarray(HEALTH_STATUSES, dtype=object)[m["health"]],
            "disability": m["disability"].astype(float),
            "labour_capacity": np.asarray(LABOUR_CAPACITIES, dtype=object)[m["labour_capacity"]],
            "migrant_work_months": m["migrant_work_months"].astype(float),
        }
    )


def _truth_rows(state: CountyState, ids: _Identifiers, round_: int, p_poor_next: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": ids.household_id,
            "round": round_,
            "poor": state.households["poor"],
            "per_capita_net_income": state.households["per_capita_net_income"],
            "p_poor_next": p_poor_next,
        }
    )


def _verification_sample(truth: pd.DataFrame, world: World, rng: np.random.Generator) -> pd.DataFrame:
    """Each round a random `verification_share` of the households is checked in the field; the visit
    sees the true status (survey noise never touches it)."""
    checked = rng.random(len(truth)) < world.verification_share
    return pd.DataFrame(
        {
            "household_id": truth["household_id"].to_numpy()[checked],
            "round": truth["round"].to_numpy()[checked],
            "poor": truth["poor"].to_numpy(dtype=np.float64)[checked],
        }
    )


# ------------------------------------------------------------------------------------- survey noise

INCOME_MISREPORT_SD = 0.15  # log sd of reported / true income, per unit of noise
UNDER_REPORTING_SHARE = 0.10  # households under-reporting wages and business, per unit of noise
UNDER_REPORTING_FACTOR = 0.75
MISSING_SHARE = 0.03  # missing answers in optional household columns, per unit of noise
INCOME_MISSING_SHARE = 0.01  # missing income components (the archive card's core item), per unit of noise
CATEGORY_MISREPORT_SHARE = 0.01  # misreported categorical and yes/no answers, per unit of noise
MISSING_EDUCATION_SHARE = 0.02  # missing member education, per unit of noise
ADMINISTRATIVE_COLUMNS = (
    "household_id",
    "village_id",
    "round",
    "survey_year",
    "poverty_status",
    "receiving_assistance",
    "assistance_ends",
)
CATEGORY_LEVELS = {"housing_structure": HOUSING_STRUCTURES, "cooking_fuel": COOKING_FUELS}
YES_NO_COLUMNS = (
    "dangerous_house",
    "safe_drinking_water",
    "electricity",
    "medical_insurance",
    "pension_insurance",
    *SHOCK_COLUMNS,
)


def _with_survey_noise(survey: Survey, noise: float, rng: np.random.Generator) -> Survey:
    """The survey as reported: incomes misreported, some answers missing or wrong. Truth is untouched."""
    if noise <= 0:
        return survey
    households = _misreport_households(survey.households, noise, rng)
    members = survey.members
    assert members is not None
    missing_education = rng.random(len(members)) < MISSING_EDUCATION_SHARE * noise
    members = members.assign(education_years=members["education_years"].mask(missing_education))
    return replace(survey, households=households, members=members)


def _misreport_households(households: pd.DataFrame, noise: float, rng: np.random.Generator) -> pd.DataFrame:
    n = len(households)
    sd = INCOME_MISREPORT_SD * noise
    under_reports = rng.random(n) < min(UNDER_REPORTING_SHARE * noise, 1.0)
    changed: dict[str, pd.Series] = {}
    for column in (
        "income_wages",
        "income_agriculture_net",
        "income_business",
        "income_transfers",
        "income_property",
    ):
        factor = rng.lognormal(-sd * sd / 2, sd, n)
        if column in ("income_wages", "income_business"):
            factor = factor * np.where(under_reports, UNDER_REPORTING_FACTOR, 1.0)
        changed[column] = households[column] * factor
    misreport = min(CATEGORY_MISREPORT_SHARE * noise, 1.0)
    for column, levels in CATEGORY_LEVELS.items():
        wrong = rng.random(n) < misreport
        changed[column] = households[column].where(~wrong, rng.choice(np.asarray(levels, dtype=object), n))
    for column in YES_NO_COLUMNS:
        flip = rng.random(n) < misreport
        changed[column] = households[column].where(~flip, 1.0 - households[column])
    reported = households.assign(**changed)
    optional = [column for column in reported.columns if column not in ADMINISTRATIVE_COLUMNS]
    share = np.array([INCOME_MISSING_SHARE if name in INCOME_COLUMNS else MISSING_SHARE for name in optional])
    missing = rng.random((n, len(optional))) < np.minimum(share * noise, 1.0)
    return reported.assign(
        **{column: reported[column].mask(missing[:, i]) for i, column in enumerate(optional)}
    )
