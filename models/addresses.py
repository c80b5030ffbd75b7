"""Addresses: how each channel's address is written and checked (SPEC §3).

One spelling per address, so that duplicates, the quarantine and the deny list all find it: an
email trimmed and lower-cased, an SMS number as `+digits` (or digits alone when written without
`+`). Preparation normalises the profiles' addresses with `address_for`; an administrator's
input is normalised the same way (`normalise_address`), so that it matches the sending logs.
What is known about an address (its error counter, its quarantine, the deny list) is in
`models/address_status.py`, `models/quarantine.py` and `models/denylist.py`.
"""

import re

from models.enums import Channel
from models.errors import BadInput

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_PHONE_CHARS = set("+0123456789 -().")
MAX_ADDRESS_LENGTH = 320  # the column's width; a longer input cannot name a stored address


def normalise_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip().lower()
    return email or None


def is_valid_email(email: str) -> bool:
    return (
        len(email) <= 254
        and "." not in (email[0], email.split("@")[0][-1:])
        and bool(_EMAIL.match(email))
    )


def address_for(channel: Channel, email: str | None, phone: str | None) -> tuple[str | None, bool]:
    """The recipient's address for the channel, and whether it is valid."""
    if channel is Channel.EMAIL:
        address = normalise_email(email)
        return address, address is not None and is_valid_email(address)
    if channel is Channel.SMS:
        number = (phone or "").strip() or None
        if number is None:
            return None, False
        digits = "".join(c for c in number if c.isdigit())
        if not (set(number) <= _PHONE_CHARS and 6 <= len(digits) <= 15):
            return number, False
        # One spelling per number ("+33 6 12 34 56 78" is "+33612345678"): duplicates are found.
        return ("+" if number.startswith("+") else "") + digits, True
    return None, False  # push: profiles carry no device token yet


def normalise_address(raw: str) -> str:
    """An administrator's input as preparation stores the address (an email if it has an @,
    otherwise an SMS number), or BAD_USER_INPUT."""
    text = raw.strip()
    if not text:
        raise BadInput("the address is empty")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise BadInput(f"the address is longer than {MAX_ADDRESS_LENGTH} characters")
    channel = Channel.EMAIL if "@" in text else Channel.SMS
    address, valid = address_for(channel, text, text)
    if address is None or not valid:
        raise BadInput(f"{text[:64]!r} is neither a valid email address nor a phone number")
    return address
