"""What operators who are not administrators read of failure messages and audit details.

A delivery's failure message, and the `reason` of its audit events, may quote the MTA's reply
(`421 4.7.0 <jane.doe@example.com> ... internal note`), its host and port: personal data and
infrastructure that SPEC §1 keeps for administrators. Everyone else reads a plain reason
derived here from the stored detail. The plain text is one of a fixed set of sentences and never
a piece of the detail, so whatever an MTA or a future code path writes, nothing leaks; and it is
decided when the text is read, not where it is written, so every writer (the engine, the API)
is covered.
"""

import re
from typing import Any

# The first pattern that matches the detail (case-insensitive) gives the plain reason.
PLAIN_FAILURES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), plain)
    for pattern, plain in (
        (r"authenticat|credential|\b53[0458]\b", "the MTA refused our credentials"),
        (r"sender|\bmail from\b", "the MTA refused the sender address"),
        (r"certificate|\btls\b|\bssl\b|handshake", "the secure connection to the MTA failed"),
        (r"timed? ?out|timeout", "the MTA did not answer in time"),
        (
            r"cannot connect|connection refused|refused the connection|unreachable"
            r"|name or service|no route|errno",
            "the MTA refused the connection or could not be reached",
        ),
        (
            r"ended the session|connection lost|disconnect|closed|\b421\b",
            "the MTA ended the connection",
        ),
        (r"validity period", "the validity period ended before every message was relayed"),
        (r"configur|unsupported|not supported", "a configuration error"),
    )
)
UNKNOWN = "sending could not go on"
SEE_DETAILS = " (administrators can read the details)"

# Audit detail values that are strings and safe for everyone: statuses, times, operator names.
# Numbers and booleans are always shown; any other string (an address, an MTA reply) is not.
PUBLIC_STRINGS = frozenset({"from", "to", "scheduledAt", "confirmedBy"})
FAILURE_KEYS = frozenset({"reason"})


def plain_failure(detail: str | None) -> str | None:
    """The failure in words fit for every operator, or None when there is no failure."""
    if detail is None:
        return None
    for pattern, plain in PLAIN_FAILURES:
        if pattern.search(detail):
            return plain + SEE_DETAILS
    return UNKNOWN + SEE_DETAILS


def public_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """An audit event's detail as operators who are not administrators read it."""
    shown: dict[str, Any] = {}
    for key, value in detail.items():
        if key in FAILURE_KEYS and isinstance(value, str):
            shown[key] = plain_failure(value)
        elif value is None or isinstance(value, bool | int | float):
            shown[key] = value  # counts and flags
        elif isinstance(value, str) and key in PUBLIC_STRINGS:
            shown[key] = value  # statuses, times, operator names
    return shown
