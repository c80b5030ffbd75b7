"""Untrusted JSON (request bodies, WebSocket messages, JSON inside them), parsed one way everywhere.

`json.loads` alone turns some cheap inputs into server errors: 200,000 `[` raise RecursionError,
bytes that are not UTF-8 raise UnicodeDecodeError where only JSONDecodeError is caught, and a
lone surrogate (`"\\ud800"`) parses fine and then fails wherever the text is encoded. `loads`
refuses all of these with InvalidJson, a JSONDecodeError, so every caller's existing `except
ValueError` (or strawberry's `except JSONDecodeError`) answers 400. With `storable`, for bodies
whose strings all go to the database (GraphQL), a NUL character is refused too (PostgreSQL
cannot store it); the webhooks check NUL in the fields they store and ignore the others.

Checking nesting and strings costs a walk over the parsed value; it is done only when the text
could hold a problem (more openers than MAX_DEPTH, or an escape of a surrogate or NUL), so the
common body pays two substring counts.
"""

import json
import re
from typing import Any

from models.text import UNSTORABLE

MAX_DEPTH = 64  # no request of ours nests more than about 8 levels
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
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
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    bad = UNSTORABLE if storable else _SURROGATE
    strings = (not text.isascii() and _SURROGATE.search(text) is not None) or (
        "\\u" in text
        and (_SURROGATE_ESCAPE.search(text) is not None or (storable and "\\u0000" in text))
    )
    if deep or strings:
        _check(value, bad)
    return value


def _check(value: Any, bad: re.Pattern[str]) -> None:
    """Depth and strings, iteratively (the value may nest as deep as the parser allowed)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, bad)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise InvalidJson(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key, bad)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_text(value: str, bad: re.Pattern[str]) -> None:
    if bad.search(value) is not None:
        what = "a NUL character or a lone surrogate" if bad is UNSTORABLE else "a lone surrogate"
        raise InvalidJson(f"a string holds {what}")
