"""Authentication and role checks, done first in every resolver that needs them."""

from strawberry.types import Info

from graphql_schema.context import Context
from models.enums import Role
from models.errors import Forbidden, Unauthenticated
from models.operator import Operator

# What a request without a valid operator is told (the server refuses it with the same words
# before it parses the query: server/http/graphql_auth.py).
MISSING_TOKEN = "authentication required: send 'Authorization: Bearer TOKEN'"
BAD_TOKEN = "the bearer token is not valid"

# What an operator without the role is told (SPEC §1: the message names the missing role).
ROLE_MESSAGES = {
    "confirmSend": (
        "You are not allowed to confirm the send: the START_DELIVERIES role is required."
    ),
}


def operator_of(info: Info[Context, None]) -> Operator:
    operator = info.context.operator
    if operator is None:
        if info.context.token_given:
            raise Unauthenticated(BAD_TOKEN)
        raise Unauthenticated(MISSING_TOKEN)
    return operator


def require(info: Info[Context, None], role: Role | None = None) -> Operator:
    operator = operator_of(info)
    if role is not None and not operator.has_role(role):
        action = info.field_name
        message = ROLE_MESSAGES.get(
            action, f"You are not allowed to run {action}: the {role.value} role is required."
        )
        raise Forbidden(message)
    return operator


def require_any_role(info: Info[Context, None]) -> Operator:
    """Profiles and their history (SPEC §1): any of the four roles; an operator without a role
    sees deliveries and their figures only."""
    operator = operator_of(info)
    if not operator.roles:
        names = ", ".join(r.value for r in Role)
        raise Forbidden(
            f"You are not allowed to read {info.field_name}: one of the roles {names} is required."
        )
    return operator


def is_administrator(info: Info[Context, None]) -> bool:
    """For what everyone may read but only administrators read in full (failure details)."""
    operator = info.context.operator
    return operator is not None and operator.has_role(Role.ADMINISTRATION)
