"""Household references in logs: a salted hash, stable for one salt, different across salts."""

from serving.privacy import household_ref, log_salt, process_salt


def test_the_reference_hides_the_id_and_depends_on_the_salt(monkeypatch) -> None:
    first = household_ref("H000123", b"salt-a")
    assert first.startswith("hh-") and "H000123" not in first and len(first) == 19
    assert household_ref("H000123", b"salt-a") == first
    assert household_ref("H000123", b"salt-b") != first
    assert household_ref("H000124", b"salt-a") != first
    monkeypatch.setenv("POVRISK_LOG_SALT", "shared")
    assert log_salt() == b"shared"
    monkeypatch.delenv("POVRISK_LOG_SALT")
    first_process = log_salt()
    assert log_salt() == first_process  # one random salt per process, for every line it logs
    process_salt.cache_clear()  # as a new process would draw
    assert log_salt() != first_process
