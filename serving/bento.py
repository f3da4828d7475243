"""Package the service as a Bento (`povrisk package`, `make bento`): the service's code, both champions
pulled from the MLflow registry, pinned Python packages and the system OpenMP runtime LightGBM needs.

1. `package_champions` loads each task's champion from the registry, with the own champions of the
   counties the policy gives models of their own, and saves them, in the layout of the service's local
   copy (`serving.model_cache`), as one BentoML model `PACKAGED_MODEL` whose labels name the shared
   registered models, versions and policy version (its metadata, the counties' models).
2. `build_bento` runs `bentoml build` on `bentofile.yaml` (repository root), which includes that model,
   installs `requirements-serve.txt` (the runtime dependencies of povrisk pinned to the versions of
   constraints.txt; `pinned_requirements` derives it, `make lock` rewrites it) and `libgomp1` in the image.

In the Bento the service still loads the registry's champions first (a container pointed at a remote
MLflow server with `MLFLOW_TRACKING_URI` serves the current champions and can `/admin/reload`); when the
registry has none or cannot be reached it serves the local copy, then the packaged champions (named in
the Bento's own bento.yaml; `POVRISK_PACKAGED_MODEL` overrides), and says so in `/model` and its log.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement

from features.policy import Policy
from serving.model_cache import save_champions

PACKAGED_MODEL = "povrisk-champions"
PACKAGED_VARIABLE = "POVRISK_PACKAGED_MODEL"
"""Overrides the BentoML model tag of the packaged champions (a Bento names its own in bento.yaml)."""
CHAMPIONS_FOLDER = "champions"
ROOT = Path(__file__).resolve().parents[1]
BENTOFILE = ROOT / "bentofile.yaml"
REQUIREMENTS = ROOT / "requirements-serve.txt"
DISTRIBUTION = "povrisk"


class PackagingError(RuntimeError):
    """The Bento cannot be built (no champion, a dependency not installed, ...); the message says why."""


@dataclass(frozen=True)
class Packaged:
    model_tag: str
    labels: dict[str, str]


# ----------------------------------------------------------------------------------------- pins


def runtime_pins(distribution: str = DISTRIBUTION) -> list[str]:
    """`name==version` for every package the distribution needs at run time (its requirements without
    extras, recursively, markers evaluated for this interpreter), at the installed versions, sorted."""
    pins: dict[str, str] = {}
    pending = [_requirements_of(distribution)]
    while pending:
        for requirement in pending.pop():
            name = _canonical(requirement.name)
            if name in pins:
                continue
            try:
                pins[name] = metadata.version(requirement.name)
            except metadata.PackageNotFoundError as error:
                raise PackagingError(
                    f"{requirement.name} (needed by {distribution}) is not installed"
                ) from error
            # its own requirements, with those of the extras asked for (e.g. psycopg[binary])
            pending.append(_requirements_of(requirement.name, tuple(requirement.extras)))
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def pinned_requirements() -> str:
    """What requirements-serve.txt must hold: `runtime_pins` under a header."""
    header = (
        "# The service's run-time packages at the versions of constraints.txt (serving.bento.runtime_pins;\n"
        "# `make lock` rewrites this file). bentofile.yaml installs them in the Bento.\n"
    )
    return header + "\n".join(runtime_pins()) + "\n"


def _requirements_of(distribution: str, extras: tuple[str, ...] = ()) -> list[Requirement]:
    """The distribution's requirements that apply here: unconditional ones, and those whose marker
    holds for this interpreter, without an extra or with one of `extras`."""
    environments = [_marker_environment(extra) for extra in ("", *extras)]
    requirements = [Requirement(text) for text in metadata.requires(distribution) or []]
    return [
        requirement
        for requirement in requirements
        if requirement.marker is None
        or any(requirement.marker.evaluate(environment) for environment in environments)
    ]


def _marker_environment(extra: str) -> dict[str, str]:
    """This interpreter's marker variables (python_version, sys_platform, ...) and `extra`."""
    return {**{name: str(value) for name, value in default_environment().items()}, "extra": extra}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ------------------------------------------------------------------------------------- models


def package_champions(policy: Policy) -> Packaged:
    """Both champions of the registry, and the own champions of the policy's counties, saved as a new
    version of the BentoML model `PACKAGED_MODEL`."""
    import bentoml

    from serving.batch import model_reference
    from serving.scoring import registry_champions, registry_county_champions

    try:
        models, aliases = registry_champions()
        counties = registry_county_champions(policy)
    except Exception as error:  # MLflow raises many types for "no such alias" or "cannot connect"
        raise PackagingError(
            f"no champion to package ({type(error).__name__}: {error}); train and promote both models first"
        ) from error
    labels = {"policy_version": policy.version}
    for task, model in models.items():
        labels[f"{task}_model"], labels[f"{task}_version"] = model_reference(model)
    metadata = {
        "aliases": aliases,
        "counties": {
            county: {task: list(model_reference(model)) for task, model in own.models.items()}
            for county, own in counties.items()
        },
    }
    with bentoml.models.create(PACKAGED_MODEL, labels=labels, metadata=metadata) as bento_model:
        save_champions(models, aliases, Path(bento_model.path) / CHAMPIONS_FOLDER, counties)
    return Packaged(model_tag=str(bento_model.tag), labels=labels)


def packaged_model_tag(bento_file: Path = ROOT.parent / "bento.yaml") -> str | None:
    """`POVRISK_PACKAGED_MODEL`, else, when this code runs from a built Bento (its `src` folder sits next
    to `bento.yaml`), the exact tag of the champions packaged in it; None outside a Bento."""
    tag = os.environ.get(PACKAGED_VARIABLE)
    if tag or not bento_file.exists():
        return tag or None
    models = (yaml.safe_load(bento_file.read_text(encoding="utf-8")) or {}).get("models") or []
    tags = [str(model.get("tag", "")) for model in models if isinstance(model, dict)]
    return next((tag for tag in tags if tag.startswith(f"{PACKAGED_MODEL}:")), None)


def packaged_champions_folder() -> Path | None:
    """The packaged champions' folder when `packaged_model_tag` names a model of the BentoML store,
    else None."""
    tag = packaged_model_tag()
    if not tag:
        return None
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return Path(bentoml.models.get(tag).path) / CHAMPIONS_FOLDER
    except NotFound:
        return None


# -------------------------------------------------------------------------------------- build


def build_bento() -> str:
    """`bentoml build` of bentofile.yaml; the Bento's tag. The requirements file must match this
    environment's pins, so that the Bento runs what the tests ran."""
    import bentoml

    if not REQUIREMENTS.exists() or REQUIREMENTS.read_text(encoding="utf-8") != pinned_requirements():
        raise PackagingError(
            f"{REQUIREMENTS.name} does not match the installed packages; run `make lock` and commit it"
        )
    bento = bentoml.bentos.build_bentofile(str(BENTOFILE), build_ctx=str(ROOT))
    return str(bento.tag)
