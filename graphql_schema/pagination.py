"""Relay-style connections with keyset cursors: pages stay right while logs keep growing."""

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

import strawberry

from models.errors import BadInput

T = TypeVar("T")
DEFAULT_PAGE = 50
MAX_PAGE = 500


def encode_cursor(kind: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        prefix, _, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        return int(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadInput(f"'after' is not a valid cursor for this list: {cursor[:64]!r}") from None


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 0 <= first <= MAX_PAGE:
        raise BadInput(f"'first' must be between 0 and {MAX_PAGE}")
    return first


def parse_id(value: strawberry.ID | str, what: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise BadInput(f"{value!r} is not a valid {what} id") from None
    if not 0 < number < 2**31:
        raise BadInput(f"{value!r} is not a valid {what} id")
    return number


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@dataclass
class Page(Generic[T]):
    nodes: list[tuple[int, T]]
    has_next: bool
    total: int
