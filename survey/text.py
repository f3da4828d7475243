"""What text a survey field or a request may carry: no control characters.

A NUL byte in a household id is refused by PostgreSQL (and once stopped the service's audit trail); a
newline or a carriage return forges lines in a log; other C0 / C1 controls and the Unicode line and
paragraph separators do the same in some viewers. None of them belongs in an id, a category or a name,
so the service (`serving.schemas`) and `povrisk validate` (`survey.validate`) refuse them with the field
named, and the same rule is used everywhere.
"""

from __future__ import annotations

import re

CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""C0 controls (NUL, tab, newline, ...), DEL, C1 controls, and U+2028 / U+2029 (line / paragraph
separators)."""


def control_characters(text: str) -> list[str]:
    """The distinct control characters in `text`, as U+XXXX codes in order of first appearance."""
    return list(dict.fromkeys(f"U+{ord(found):04X}" for found in CONTROL_CHARACTERS.findall(text)))


def has_control_characters(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None


def printable(text: str) -> str:
    """`text` with every control character shown as an escape (`\\n`, `\\x00`, `\\u2028`), for a log
    line or a message that quotes something a request or a file brought."""
    return CONTROL_CHARACTERS.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


_URI_PASSWORD = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s/:@]*):(?P<password>[^\s/?#]*)@"
)
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;](?:password|passwd|pwd|token|access_token|secret|api_key|apikey|key)=)(?P<value>[^&;\s#]*)",
    re.IGNORECASE,
)
REDACTED = "***"


def redact_credentials(text: str) -> str:
    """`text` with the password of every URI in it (`scheme://user:password@host`) and the value of
    every secret-looking query parameter (`?password=`, `&token=`, ...) replaced by `***`: for a
    tracking or database URI shown in a message, a log line or an answer."""
    text = _URI_PASSWORD.sub(lambda found: f"{found['scheme']}{found['user']}:{REDACTED}@", text)
    return _SECRET_PARAMETER.sub(lambda found: f"{found['name']}{REDACTED}", text)
