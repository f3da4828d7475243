"""API keys and roles of the scoring service.

Roles:
- `cadre`: bound to one or more villages; may score (and what-if) only households of those villages;
- `monitor`: a monitoring team of the county the service serves: any household of it;
- `analyst`: everything, including the model card (`GET /model`) and `POST /admin/reload`.

Keys are random tokens (`povrisk keys add` makes one and shows it once). Only their SHA-256 is stored,
in a YAML key file (`POVRISK_API_KEYS_FILE`) or the same YAML/JSON inline in `POVRISK_API_KEYS`:

    keys:
      - {id: cadre-li, role: cadre, villages: [V0003, V0004], sha256: 5e88...}
      - {id: analyst-wang, role: analyst, sha256: 9f86...}

A presented key is hashed and compared with every stored hash in constant time (`hmac.compare_digest`,
no early exit), so neither the comparison nor the position of a key leaks through timing. A SHA-256 is
enough for a 256-bit random token (unlike a password it cannot be guessed from a dictionary).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from survey.text import has_control_characters

Role = Literal["cadre", "monitor", "analyst"]
ROLES: tuple[Role, ...] = ("cadre", "monitor", "analyst")
KEYS_FILE_VARIABLE = "POVRISK_API_KEYS_FILE"
KEYS_VARIABLE = "POVRISK_API_KEYS"
KEY_PREFIX = "pvk_"
HEADER = "x-api-key"
MAX_KEY_ID_LENGTH = 64
"""As long as the audit trail's `key_id` column."""

ENDPOINT_ROLES: Mapping[str, frozenset[Role]] = {
    "/score": frozenset(ROLES),
    "/score_batch": frozenset(ROLES),
    "/whatif": frozenset(ROLES),
    "/model": frozenset({"analyst"}),
    "/admin/reload": frozenset({"analyst"}),
}
"""The service's own endpoints and who may call them; every other path (health, metrics, OpenAPI) is
open."""


class KeyFileError(ValueError):
    """The key file or variable is missing, unreadable or malformed (the message says which entry)."""


@dataclass(frozen=True)
class ApiKey:
    """One stored key: its id (logged and audited), role, villages (cadres) and SHA-256."""

    key_id: str
    role: Role
    villages: frozenset[str]
    sha256: str

    def may_call(self, path: str) -> bool:
        return self.role in ENDPOINT_ROLES.get(path, frozenset())

    def may_score(self, village_id: str) -> bool:
        """Cadres only their villages; monitors and analysts the whole county."""
        return self.role != "cadre" or village_id in self.villages


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[ApiKey, ...]

    def identify(self, presented: str | None) -> ApiKey | None:
        """The key whose hash matches `presented`, or None; every stored hash is compared."""
        if not presented:
            return None
        digest = hash_key(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.sha256):
                found = key
        return found


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_key_ring(raw: Any, source: str) -> KeyRing:
    """A KeyRing from the parsed YAML/JSON; `KeyFileError` naming every bad entry."""
    entries = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise KeyFileError(f"{source}: expected a mapping with a non-empty list `keys`")
    keys, problems = [], []
    for number, entry in enumerate(entries):
        try:
            keys.append(_parse_entry(entry))
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"keys[{number}]: {error}")
    ids = [key.key_id for key in keys]
    duplicated = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
    if duplicated:
        problems.append(f"duplicate key id(s) {duplicated}")
    holders: dict[str, list[str]] = {}
    for key in keys:
        holders.setdefault(key.sha256, []).append(key.key_id)
    shared = [sorted(ids) for ids in holders.values() if len(ids) > 1]
    if shared:  # one key would act as whichever entry comes last: refuse rather than guess
        problems.append(f"key ids {', '.join(' and '.join(ids) for ids in shared)} have the same sha256")
    if problems:
        raise KeyFileError(f"{source}: " + "; ".join(problems))
    return KeyRing(tuple(keys))


def _parse_entry(entry: Any) -> ApiKey:
    if not isinstance(entry, dict):
        raise TypeError("each key is a mapping with id, role, sha256 (and villages for a cadre)")
    unknown = sorted(set(entry) - {"id", "role", "villages", "sha256"})
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}")
    key_id, role, digest = str(entry["id"]), entry["role"], str(entry["sha256"]).lower()
    if not key_id.strip() or len(key_id) > MAX_KEY_ID_LENGTH or has_control_characters(key_id):
        raise ValueError(
            f"id {key_id!r}: 1 to {MAX_KEY_ID_LENGTH} characters without control characters "
            "(it is logged and audited)"
        )
    if role not in ROLES:
        raise ValueError(f"role must be one of {list(ROLES)}, got {role!r}")
    if len(digest) != 64 or any(character not in "0123456789abcdef" for character in digest):
        raise ValueError("sha256 must be 64 hex digits (the hash of the key, never the key)")
    villages = _villages(entry.get("villages"))
    if role == "cadre" and not villages:
        raise ValueError(f"cadre key {key_id!r} needs its villages")
    return ApiKey(key_id=key_id, role=role, villages=villages, sha256=digest)


def _villages(listed: Any) -> frozenset[str]:
    """A cadre's villages: a list of ids (a single id written without brackets is refused: it would
    otherwise be read as its letters)."""
    if listed is None:
        return frozenset()
    if not isinstance(listed, list):
        raise ValueError(f"villages must be a list of village ids, e.g. [V0003], got {listed!r}")
    villages = [str(village) for village in listed]
    bad = [village for village in villages if not village.strip() or has_control_characters(village)]
    if bad:
        raise ValueError(f"villages {bad!r}: a village id is not empty and has no control characters")
    return frozenset(villages)


def load_key_ring(environment: Mapping[str, str] | None = None) -> KeyRing:
    """The key ring from `POVRISK_API_KEYS` (inline) or `POVRISK_API_KEYS_FILE` (a path)."""
    environment = os.environ if environment is None else environment
    inline = environment.get(KEYS_VARIABLE)
    if inline and environment.get(KEYS_FILE_VARIABLE):
        raise KeyFileError(
            f"API keys given twice: {KEYS_VARIABLE} (inline) and {KEYS_FILE_VARIABLE} / --keys "
            f"({environment[KEYS_FILE_VARIABLE]}); one would silently win over the other, so unset one"
        )
    if inline:
        return parse_key_ring(_parse_text(inline, KEYS_VARIABLE), KEYS_VARIABLE)
    path = environment.get(KEYS_FILE_VARIABLE)
    if not path:
        raise KeyFileError(
            f"no API keys: set {KEYS_FILE_VARIABLE} to a key file (make one with `povrisk keys add`) "
            f"or {KEYS_VARIABLE} to its content"
        )
    return read_key_file(Path(path))


def read_key_file(path: Path) -> KeyRing:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read the key file ({error})") from error
    return parse_key_ring(_parse_text(text, str(path)), str(path))


def _parse_text(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as error:
        raise KeyFileError(f"{source}: not valid YAML or JSON ({error})") from error


def add_key(path: Path, key_id: str, role: Role, villages: tuple[str, ...] = ()) -> str:
    """Make a new key, store its hash in the key file (created when absent; replaced atomically) and
    return the key itself, which is stored nowhere."""
    entries: list[dict[str, Any]] = []
    if path.exists():
        existing = read_key_file(path)
        entries = [_entry(key) for key in existing.keys]
        if any(key.key_id == key_id for key in existing.keys):
            raise KeyFileError(f"{path}: a key with id {key_id!r} exists already")
    key = new_key()
    entry: dict[str, Any] = {"id": key_id, "role": role, "sha256": hash_key(key)}
    if villages:
        entry["villages"] = sorted(villages)
    parse_key_ring({"keys": [*entries, entry]}, str(path))  # refuse what the service would refuse
    _write_atomically(path, yaml.safe_dump({"keys": [*entries, entry]}, allow_unicode=True, sort_keys=False))
    return key


def _entry(key: ApiKey) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": key.key_id, "role": key.role, "sha256": key.sha256}
    if key.villages:
        entry["villages"] = sorted(key.villages)
    return entry


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(staging, 0o600)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def key_ring_json(ring: KeyRing) -> str:
    """The ring as the JSON `POVRISK_API_KEYS` takes (hashes only)."""
    return json.dumps({"keys": [_entry(key) for key in ring.keys]})
