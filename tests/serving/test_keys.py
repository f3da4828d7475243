"""API keys: the key file, roles and village scope, hashing and constant-time lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving import keys as keys_module
from serving.keys import KeyFileError, add_key, hash_key, load_key_ring, parse_key_ring, read_key_file


def _entry(key_id: str, role: str, key: str, villages: list[str] | None = None) -> dict:
    entry = {"id": key_id, "role": role, "sha256": hash_key(key)}
    return entry | ({"villages": villages} if villages else {})


def test_a_key_is_recognised_by_its_hash_and_carries_its_role_and_villages() -> None:
    ring = parse_key_ring(
        {"keys": [_entry("li", "cadre", "k1", ["V1", "V2"]), _entry("wang", "analyst", "k2")]}, "test"
    )
    cadre, analyst = ring.identify("k1"), ring.identify("k2")
    assert cadre is not None and cadre.key_id == "li" and cadre.may_score("V2") and not cadre.may_score("V3")
    assert analyst is not None and analyst.may_score("anywhere")
    assert ring.identify("k3") is None and ring.identify("") is None and ring.identify(None) is None
    assert cadre.may_call("/score") and not cadre.may_call("/model") and analyst.may_call("/admin/reload")


def test_every_stored_hash_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: the lookup time does not tell which key matched."""
    compared: list[str] = []

    def counting(left: str, right: str) -> bool:
        compared.append(right)
        return left == right

    monkeypatch.setattr(keys_module.hmac, "compare_digest", counting)
    ring = parse_key_ring({"keys": [_entry(f"k{i}", "monitor", f"secret{i}") for i in range(5)]}, "test")
    assert ring.identify("secret0") is not None
    assert len(compared) == 5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "non-empty list `keys`"),
        ({"keys": [{"id": "a", "role": "boss", "sha256": "0" * 64}]}, "role must be one of"),
        ({"keys": [{"id": "a", "role": "monitor", "sha256": "plain-key"}]}, "64 hex digits"),
        ({"keys": [{"id": "a", "role": "cadre", "sha256": "0" * 64}]}, "needs its villages"),
        ({"keys": [{"id": "a", "role": "monitor", "sha256": "0" * 64, "key": "x"}]}, "unknown field"),
        ({"keys": [{"id": "a", "role": "monitor", "sha256": "0" * 64}] * 2}, "duplicate key id"),
    ],
)
def test_a_malformed_key_file_is_refused_with_the_reason(raw: dict, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        parse_key_ring(raw, "keys.yaml")


def test_add_key_stores_only_the_hash_and_refuses_a_duplicate_id(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    key = add_key(path, "li", "cadre", ("V1",))
    assert key.startswith("pvk_") and len(key) > 40
    text = path.read_text(encoding="utf-8")
    assert key not in text and hash_key(key) in text
    assert path.stat().st_mode & 0o777 == 0o600
    add_key(path, "wang", "analyst")
    ring = read_key_file(path)
    assert [k.key_id for k in ring.keys] == ["li", "wang"] and ring.identify(key) is not None
    with pytest.raises(KeyFileError, match="exists already"):
        add_key(path, "li", "monitor")
    with pytest.raises(KeyFileError, match="needs its villages"):
        add_key(path, "zhao", "cadre")
    assert [k.key_id for k in read_key_file(path).keys] == ["li", "wang"]  # nothing half-written


def test_keys_come_from_the_variable_or_the_file(tmp_path: Path) -> None:
    inline = json.dumps({"keys": [_entry("a", "monitor", "k")]})
    assert load_key_ring({"POVRISK_API_KEYS": inline}).identify("k") is not None
    path = tmp_path / "keys.yaml"
    add_key(path, "b", "analyst")
    assert [k.key_id for k in load_key_ring({"POVRISK_API_KEYS_FILE": str(path)}).keys] == ["b"]
    with pytest.raises(KeyFileError, match="no API keys"):
        load_key_ring({})
    with pytest.raises(KeyFileError, match="cannot read"):
        load_key_ring({"POVRISK_API_KEYS_FILE": str(tmp_path / "absent.yaml")})


def test_keys_given_both_inline_and_as_a_file_are_refused(tmp_path: Path) -> None:
    """The inline variable silently won: keys of the file got 401, a key revoked from the file kept
    working."""
    path = tmp_path / "keys.yaml"
    add_key(path, "b", "analyst")
    inline = json.dumps({"keys": [_entry("a", "monitor", "k")]})
    with pytest.raises(KeyFileError, match="API keys given twice"):
        load_key_ring({"POVRISK_API_KEYS": inline, "POVRISK_API_KEYS_FILE": str(path)})


@pytest.mark.parametrize(
    ("villages", "message"),
    [("V0003", "villages must be a list"), (["V1", ""], "a village id is not empty"), (["V\n1"], "control")],
)
def test_villages_that_are_not_a_list_of_ids_are_refused(villages: object, message: str) -> None:
    """`villages: V0003` was read as the villages {V, 0, 3}."""
    entry = _entry("li", "cadre", "k") | {"villages": villages}
    with pytest.raises(KeyFileError, match=message):
        parse_key_ring({"keys": [entry]}, "test")


def test_two_ids_sharing_one_hash_are_refused() -> None:
    """The last entry won: one key acted as another holder."""
    with pytest.raises(KeyFileError, match="key ids a and b have the same sha256"):
        parse_key_ring({"keys": [_entry("a", "monitor", "same"), _entry("b", "analyst", "same")]}, "test")


@pytest.mark.parametrize("key_id", ["", "x" * 65, "li\nforged"])
def test_a_key_id_the_log_and_audit_cannot_hold_is_refused(key_id: str) -> None:
    with pytest.raises(KeyFileError, match="without control characters"):
        parse_key_ring({"keys": [_entry(key_id, "monitor", "k")]}, "test")
