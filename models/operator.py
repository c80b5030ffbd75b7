"""Operators: who may do what. Tokens are stored only as SHA-256 hashes.

An operator's name is what `confirmedBy`, `approvedBy` and the audit trail show, so it must
read as what it is: `operator_name` normalises it and refuses what could make two names look
alike (invisible, control and bidirectional-control characters). A revoked operator keeps its
row (and its name: nobody can take it over in the history), but no token matches it any more.
"""

import hashlib
import re
import secrets
import unicodedata
from datetime import datetime
from functools import lru_cache

from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.audit import COMMAND_LINE, Actor, AuditAction, record
from models.delivery import utcnow
from models.enums import Role, holds
from models.errors import BadInput, InvalidState, NotFound

MAX_NAME = 100
# Printable by Python's rules yet blank on screen: Hangul fillers, the braille blank, and the
# like. Everything Python finds unprintable (controls, format characters such as zero-width
# spaces and bidirectional controls, separators other than the space) is refused as well.
BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u17b4\u17b5\u034f")
_SPACES = re.compile(r"\s+")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def operator_name(raw: str) -> str:
    """The name as stored: NFKC-normalised (full-width and other compatibility forms become
    plain letters), whitespace runs collapsed to one space and trimmed; BAD_USER_INPUT for an
    empty or over-long name, or one holding a character that does not show as itself."""
    name = _SPACES.sub(" ", unicodedata.normalize("NFKC", raw)).strip()
    if not name:
        raise BadInput("an operator needs a name")
    if len(name) > MAX_NAME:
        raise BadInput(f"an operator name is at most {MAX_NAME} characters (got {len(name)})")
    for char in name:
        if char != " " and (not char.isprintable() or char in BLANK_LOOKING):
            code = f"U+{ord(char):04X}"
            label = unicodedata.name(char, "an unnamed character")
            raise BadInput(
                f"an operator name may hold only visible characters and spaces: {code}"
                f" ({label}) is not one"
            )
    if unicodedata.combining(name[0]):
        raise BadInput("an operator name cannot start with a combining mark")
    return name


class Operator(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    roles = fields.JSONField[list[str]](default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Set by a revocation: the token hash was replaced by one of a token nobody knows.
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "operator"

    @property
    def role_set(self) -> frozenset[Role]:
        return _role_set(tuple(self.roles))

    def has_role(self, role: Role) -> bool:
        return holds(self.role_set, role)


@lru_cache(maxsize=64)
def _role_set(roles: tuple[str, ...]) -> frozenset[Role]:
    """Memoised: a page's role checks (a field per row) read the same few role lists."""
    return frozenset(Role(r) for r in roles)


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


async def _audit(action: AuditAction, by: Actor, operator: Operator, now: datetime) -> None:
    detail: dict[str, object] = {"targetOperatorId": operator.id, "targetOperator": operator.name}
    if action is AuditAction.OPERATOR_CREATED:
        detail["roles"] = list(operator.roles)
    await record(action, by, at=now, detail=detail)


async def create_operator(
    name: str, roles: list[Role], by: Actor | None = None
) -> tuple[Operator, str]:
    """Create an operator and return it with its bearer token (shown once, never stored)."""
    name = operator_name(name)
    taken = BadInput(
        f"an operator named {name!r} already exists (for a new token, rotate it:"
        " `python -m server operator rotate NAME`, or rotateOperatorToken)"
    )
    if await Operator.filter(name=name).exists():
        raise taken
    token, token_hash = _new_token()
    unique_roles = sorted({r.value for r in roles})
    try:
        async with in_transaction():
            operator = await Operator.create(name=name, token_hash=token_hash, roles=unique_roles)
            await _audit(AuditAction.OPERATOR_CREATED, by or COMMAND_LINE, operator, utcnow())
    except IntegrityError:  # the same name created at the same time
        raise taken from None
    return operator, token


async def _locked(name: str | None, operator_id: int | None) -> Operator:
    """By name (normalised as at creation) or by id, locked; NOT_FOUND when there is none."""
    if (name is None) == (operator_id is None):
        raise BadInput("give the operator's name or its id (one of them)")
    query = Operator.select_for_update()
    if name is not None:
        # The name as given first: an operator created before names were checked may hold
        # characters that operator_name() now refuses, and must still be revocable.
        storable = len(name) <= 200 and "\x00" not in name  # PostgreSQL text holds no NUL
        found = await query.get_or_none(name=name) if storable else None
        if found is None:
            name = operator_name(name)
            found = await Operator.select_for_update().get_or_none(name=name)
        what = f"named {name!r}"
    else:
        found, what = await query.get_or_none(id=operator_id), f"with id {operator_id}"
    if found is None:
        raise NotFound(f"no operator {what}")
    return found


async def revoke_operator(
    by: Actor, *, name: str | None = None, operator_id: int | None = None
) -> Operator:
    """The operator's token stops matching at once; its row and name stay. Revoking twice is
    INVALID_STATE (one event in the trail), and an operator cannot revoke itself (the last
    administrator would lock everyone out; another one, or the command line, can)."""
    async with in_transaction():
        operator = await _locked(name, operator_id)
        if operator.revoked_at is not None:
            raise InvalidState(f"operator {operator.name!r} was already revoked")
        if by.operator_id == operator.id:
            raise BadInput(
                "you cannot revoke your own token (rotate it instead, or ask another administrator)"
            )
        now = utcnow()
        _, operator.token_hash = _new_token()  # the hash of a token shown to no one
        operator.revoked_at = now
        await operator.save(update_fields=["token_hash", "revoked_at"])
        await _audit(AuditAction.OPERATOR_REVOKED, by, operator, now)
    return operator


async def rotate_operator_token(
    by: Actor, *, name: str | None = None, operator_id: int | None = None
) -> tuple[Operator, str]:
    """A new token for the operator; the old one stops matching at once."""
    async with in_transaction():
        operator = await _locked(name, operator_id)
        if operator.revoked_at is not None:
            raise InvalidState(
                f"operator {operator.name!r} was revoked: create a new operator instead"
            )
        token, operator.token_hash = _new_token()
        await operator.save(update_fields=["token_hash"])
        await _audit(AuditAction.OPERATOR_TOKEN_ROTATED, by, operator, utcnow())
    return operator, token


async def operators_by_token_hash(hashes: list[str]) -> dict[str, Operator]:
    """The live (not revoked) operators whose tokens hash to these, in one query per 5,000
    hashes: one token's look-up, or the WebSocket sweep's for all its open sockets at once."""
    found: dict[str, Operator] = {}
    for start in range(0, len(hashes), 5000):  # PostgreSQL takes at most 32,767 parameters
        chunk = hashes[start : start + 5000]
        for operator in await Operator.filter(token_hash__in=chunk, revoked_at__isnull=True):
            found[operator.token_hash] = operator
    return found
