"""VERP envelope senders: `bounces+<log>-<signature>@<bounce domain>` (issue 15).

Each message goes out with an envelope sender (Return-Path) of its own, so that a bounce that
comes back days later, to that address, names its sending log without a database look-up and
whatever the bounce's format. The signature is an HMAC-SHA256 of the log id, keyed with the
feedback secret and cut to 80 bits, written in lower-case base32: nobody can make up the address
of another log, and a mail system that changes the case of the local part breaks nothing. The
local part stays under 40 characters (RFC 5321 allows 64).
"""

import base64
import hashlib
import hmac
import re

PREFIX = "bounces"
SIGNATURE_BYTES = 10  # 80 bits: 16 base32 characters
MAX_LOG_ID = 2**31 - 1  # sending_log.id is a 32-bit integer
_LOCAL = re.compile(rf"^{PREFIX}\+(\d{{1,10}})-([a-z2-7]{{16}})$")


def _signature(key: str, log_id: int) -> str:
    digest = hmac.new(key.encode(), f"verp:{log_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:SIGNATURE_BYTES]).decode().lower()


def verp_address(key: str, domain: str, log_id: int) -> str:
    """The envelope sender of the message of this sending log."""
    return f"{PREFIX}+{log_id}-{_signature(key, log_id)}@{domain}"


def read_verp_address(key: str, domain: str, address: str) -> int | None:
    """The sending log a VERP address names, if it is one of ours (this domain, a good
    signature); None otherwise. Case-insensitive; angle brackets are allowed around it."""
    local, at, host = address.strip().removeprefix("<").removesuffix(">").rpartition("@")
    if not at or host.lower().rstrip(".") != domain.lower().rstrip("."):
        return None
    match = _LOCAL.match(local.lower())
    if match is None:
        return None
    log_id = int(match.group(1))
    if log_id > MAX_LOG_ID:
        return None
    if not hmac.compare_digest(_signature(key, log_id), match.group(2)):
        return None
    return log_id
