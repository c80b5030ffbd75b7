"""Who may resolve a field: declared on the field itself with `needs(...)`, a strawberry
permission, so that each field's rule is read where the field is, whichever path reaches it.

    @strawberry.field(extensions=needs(Role.ADMINISTRATION))

`needs()` asks for a valid token, `needs(ANY_ROLE)` for one of the four roles (profiles and
their history), `needs(role)` for that role (ADMINISTRATION includes every other role). A
missing role is FORBIDDEN, and the message names it (SPEC §1).
"""

from functools import cache
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
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
ANY_ROLE = "ANY_ROLE"  # needs(ANY_ROLE): one of the four roles, whichever
# needs(OWN), on a field of an Operator: read through `me` (or an administrator's mutation), or
# by an administrator. Who holds which role is not for every operator to read, though names are
# (confirmedBy, the audit trail). It depends on the path and the roles, never on who asks: a
# subscription's result is shared by the subscribers with the same roles (Context.audience).
OWN = "OWN"


def operator_of(info: Info[Context, None]) -> Operator:
    """The operator behind the token (UNAUTHENTICATED without one)."""
    operator = info.context.operator
    if operator is None:
        if info.context.token_given:
            raise Unauthenticated(BAD_TOKEN)
        raise Unauthenticated(MISSING_TOKEN)
    return operator


def missing_role(operator: Operator, role: Role | str | None, field: str) -> str | None:
    """Why `operator` may not resolve `field` that needs `role`, or None when it may."""
    if role is None:
        return None
    if role == ANY_ROLE:
        if operator.roles:
            return None
        names = ", ".join(r.value for r in Role)
        return f"You are not allowed to read {field}: one of the roles {names} is required."
    assert isinstance(role, Role)
    if operator.has_role(role):
        return None
    return ROLE_MESSAGES.get(
        field, f"You are not allowed to run {field}: the {role.value} role is required."
    )


def require(info: Info[Context, None], role: Role | str | None = None) -> Operator:
    """The check `needs` declares, for the rare resolver that decides at run time."""
    operator = operator_of(info)
    message = missing_role(operator, role, info.field_name)
    if message is not None:
        raise Forbidden(message)
    return operator


def role_needed(field: Any) -> Role | str | None:
    """The role `needs(...)` declares on a graphql-core field (None: a token is enough)."""
    definition = field.extensions.get("strawberry-definition")
    for extension in getattr(definition, "extensions", None) or ():
        for permission in getattr(extension, "permissions", ()):
            if isinstance(permission, _Needs):
                return permission.role
    return None


class _Needs(BasePermission):
    role: Role | str | None = None

    def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        if self.role == OWN:
            operator = operator_of(info)
            if not source.own and not operator.has_role(Role.ADMINISTRATION):
                raise Forbidden(
                    f"You are not allowed to read {info.field_name} of another operator: the"
                    " ADMINISTRATION role is required."
                )
            return True
        require(info, self.role)  # raises the coded error (UNAUTHENTICATED or FORBIDDEN)
        return True


@cache
def _permission(role: Role | str | None) -> BasePermission:
    kind = type(f"Needs{role or 'Token'}", (_Needs,), {"role": role})
    return kind()  # type: ignore[no-any-return]


def needs(role: Role | str | None = None) -> list[FieldExtension]:
    """The field's extensions: who may resolve it (see the module's docstring)."""
    return [PermissionExtension([_permission(role)], use_directives=False)]


def is_administrator(info: Info[Context, None]) -> bool:
    """For what everyone may read but only administrators read in full (failure details)."""
    operator = info.context.operator
    return operator is not None and operator.has_role(Role.ADMINISTRATION)
