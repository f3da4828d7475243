"""What the service's logs may say about a household: a salted hash of its id, never the id itself.

The salt is `POVRISK_LOG_SALT` (set it to the same secret on every replica, so that one household's
lines can be followed across them and across restarts); without it each process draws a random salt,
and its lines can be followed only within that process (the service's own lines and its middleware's
name a household alike). The audit trail (monitoring.audit), kept in the
protected database, holds the ids themselves.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets

SALT_VARIABLE = "POVRISK_LOG_SALT"
REFERENCE_LENGTH = 16


def log_salt() -> bytes:
    """`POVRISK_LOG_SALT`, else this process's random salt (the same for every log line it writes)."""
    configured = os.environ.get(SALT_VARIABLE)
    return configured.encode("utf-8") if configured else process_salt()


@functools.cache
def process_salt() -> bytes:
    return secrets.token_bytes(32)


def household_ref(household_id: str, salt: bytes) -> str:
    """`hh-` and the first 16 hex digits of HMAC-SHA256(salt, household id)."""
    digest = hmac.new(salt, household_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "hh-" + digest[:REFERENCE_LENGTH]
