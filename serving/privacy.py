"""What the service's logs may say about a household: a salted hash of its id, never the id itself.

The salt is `POVRISK_LOG_SALT` (set it to the same secret on every replica, so that one household's
lines can be followed across them and across restarts); without it each process draws a random salt,
and its lines can be followed only within that process. The audit trail (monitoring.audit), kept in the
protected database, holds the ids themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

SALT_VARIABLE = "POVRISK_LOG_SALT"
REFERENCE_LENGTH = 16


def log_salt() -> bytes:
    configured = os.environ.get(SALT_VARIABLE)
    return configured.encode("utf-8") if configured else secrets.token_bytes(32)


def household_ref(household_id: str, salt: bytes) -> str:
    """`hh-` and the first 16 hex digits of HMAC-SHA256(salt, household id)."""
    digest = hmac.new(salt, household_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "hh-" + digest[:REFERENCE_LENGTH]
