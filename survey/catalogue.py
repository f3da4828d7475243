"""The message catalogue: every sentence, label and heading a person reads, in Chinese and English.

One file, `survey/messages.yaml`, nested by subject (`tier`, `category`, `rule`, `status`, `page`, the
reasons' phrase book `reason`, the causes `cause`, the data blocks `block`, ...);
a message is named by its path (`category.sudden_hardship`) and holds one text per language, with
`{placeholders}` in Python's format syntax (`{ratio:.2f}`). Every room reads it through `message`;
a missing message or language is a `KeyError` naming it, never a code shown to a person. The
catalogue's own test checks that every message has both languages with the same placeholders.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
CATALOGUE_FILE = Path(__file__).with_name("messages.yaml")


@cache
def _tree() -> Mapping[str, Any]:
    with CATALOGUE_FILE.open(encoding="utf-8") as handle:
        tree: Mapping[str, Any] = yaml.safe_load(handle)
    return tree


@cache
def catalogue() -> Mapping[str, Mapping[str, str]]:
    """Every message: its dotted name -> {language: text}."""
    return _flattened(_tree())


def catalogue_section(name: str) -> Mapping[str, Any]:
    """One section of the catalogue as it is nested (the reasons' phrase book: `reason`)."""
    section = _tree().get(name)
    if not isinstance(section, Mapping):
        raise KeyError(f"the message catalogue has no section {name!r}")
    return section


def _flattened(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Mapping[str, str]]:
    flat: dict[str, Mapping[str, str]] = {}
    for name, node in tree.items():
        path = f"{prefix}{name}"
        if isinstance(node, Mapping) and set(node) <= set(LANGUAGES) and node:
            flat[path] = {language: str(text) for language, text in node.items()}
        elif isinstance(node, Mapping):
            flat.update(_flattened(node, f"{path}."))
        else:
            raise ValueError(f"{CATALOGUE_FILE}: {path} is neither a message (zh/en) nor a section")
    return flat


def message(name: str, lang: Language, **values: Any) -> str:
    """The message `name` in `lang`, with its placeholders filled from `values`."""
    try:
        text = catalogue()[name][lang]
    except KeyError:
        raise KeyError(f"the message catalogue has no {lang} text for {name!r}") from None
    return text.format(**values) if values else text


def has_message(name: str) -> bool:
    return name in catalogue()


def label(section: str, code: str, lang: Language) -> str:
    """The person's word for a code (`label("category", "marginal", "zh")`)."""
    return message(f"{section}.{code}", lang)
