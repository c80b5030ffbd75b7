"""Operators: who may do what. Tokens are stored only as SHA-256 hashes."""

import hashlib
import secrets

from tortoise import fields
from tortoise.models import Model

from models.enums import Role
from models.errors import BadInput


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Operator(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    roles = fields.JSONField[list[str]](default=list)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "operator"

    @property
    def role_set(self) -> frozenset[Role]:
        return frozenset(Role(r) for r in self.roles)

    def has_role(self, role: Role) -> bool:
        """ADMINISTRATION may do everything; START_DELIVERIES includes PREPARE_DELIVERIES."""
        held = self.role_set
        if Role.ADMINISTRATION in held or role in held:
            return True
        return role is Role.PREPARE_DELIVERIES and Role.START_DELIVERIES in held


async def create_operator(name: str, roles: list[Role]) -> tuple[Operator, str]:
    """Create an operator and return it with its bearer token (shown once, never stored)."""
    name = name.strip()
    if not name:
        raise BadInput("an operator needs a name")
    if await Operator.filter(name=name).exists():
        raise BadInput(f"an operator named {name!r} already exists")
    token = secrets.token_urlsafe(32)
    unique_roles = sorted({r.value for r in roles})
    operator = await Operator.create(name=name, token_hash=hash_token(token), roles=unique_roles)
    return operator, token


async def operator_for_token(token: str) -> Operator | None:
    if not token:
        return None
    return await Operator.get_or_none(token_hash=hash_token(token))
