"""Untrusted JSON (request bodies, WebSocket messages, JSON inside them), parsed one way everywhere.

`json.loads` alone turns some cheap inputs into server errors: 200,000 `[` raise RecursionError,
bytes that are not UTF-8 raise UnicodeDecodeError where only JSONDecodeError is caught, and a
lone surrogate (`"\\ud800"`) parses fine and then fails wherever the text is encoded. `loads`
refuses all of these with InvalidJson, a JSONDecodeError, so every caller's existing `except
ValueError` (or strawberry's `except JSONDecodeError`) answers 400. With `storable`, for bodies
whose strings all go to the database (GraphQL), a NUL character is refused too (PostgreSQL
cannot store it); the webhooks check NUL in the fields they store and ignore the others.

Strings are checked on the text (a regular expression finds a lone surrogate escape), not
value by value; nesting is checked on the parsed value, containers only, and only when the
text has more than MAX_DEPTH openers. A small body pays a few substring counts.
"""

import json
import re
from typing import Any

MAX_DEPTH = 64  # no request of ours nests more than about 8 levels
# Once escaped backslashes are gone, every "\u" left is a unicode escape.
# Written to start with the literal "\u", so that the search skips ahead between escapes: a
# high surrogate not followed by a low one, or a low one not preceded by a high one.
_LONE_SURROGATE = re.compile(
    r"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    r"|[c-fC-F][0-9a-fA-F]{2}(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}))"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidJson(json.JSONDecodeError):
    """Refused JSON; `str()` is the reason alone, fit for a 400's message."""

    def __init__(self, reason: str, pos: int = 0) -> None:
        super().__init__(reason, "", pos)
        self.args = (reason,)

    def __str__(self) -> str:
        return str(self.args[0])


def loads(data: bytes | bytearray | str, *, storable: bool = False) -> Any:
    """The value of a JSON text; InvalidJson when it is not UTF-8, not JSON, nested deeper
    than MAX_DEPTH, or holds a lone surrogate (with `storable`, or a NUL) in a string."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJson(f"not UTF-8 (byte {error.start})", error.start) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidJson(f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise InvalidJson(f"{error.msg} (line {error.lineno}, column {error.colno})") from None
    # The text is valid JSON from here on, which the checks below rely on.
    unescaped = text.replace("\\\\", "") if "\\" in text else text
    if "\\u" in unescaped:
        if _LONE_SURROGATE.search(unescaped) is not None:
            raise InvalidJson("a string holds a lone surrogate")
        if storable and "\\u0000" in unescaped:
            raise InvalidJson("a string holds a NUL character")
    if not text.isascii() and _SURROGATE.search(text) is not None:  # str input only
        raise InvalidJson("a string holds a lone surrogate")
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(MAX_DEPTH, value):
        raise InvalidJson(f"nested deeper than {MAX_DEPTH} levels")
    return value


def _deeper_than(limit: int, value: Any) -> bool:
    """Do the arrays and objects of `value` nest deeper than `limit`? One level at a time,
    looking at containers only (a level-by-level pass over a 1,000-event batch costs about
    half of its parse)."""
    if type(value) is not dict and type(value) is not list:
        return False
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if type(item) is dict else item)
            if type(child) is dict or type(child) is list
        ]
        if not level:
            return False
    return True
