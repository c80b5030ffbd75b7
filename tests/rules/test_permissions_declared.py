"""Role checks sit where each field is declared (`needs(...)`, graphql_schema/permissions.py),
and the mutations on deliveries declare the role of their action in models/actions.py, the
table Delivery.allowedActions reads: no resolver checks roles on its own. No server."""

import re
from pathlib import Path

from strawberry.permission import PermissionExtension

from graphql_schema.schema import Mutation, Query, Subscription
from models.actions import ACTIONS, DeliveryAction, role_of

ROOT = Path(__file__).resolve().parents[2]
# the mutation of each action (SEND_PROOF: sendProof, in graphql_schema/proofs/)
MUTATIONS = {
    DeliveryAction.PREPARE: "prepare_delivery",
    DeliveryAction.APPROVE: "approve_delivery",
    DeliveryAction.CONFIRM: "confirm_send",
    DeliveryAction.PAUSE: "pause_delivery",
    DeliveryAction.RESUME: "resume_delivery",
    DeliveryAction.STOP: "stop_delivery",
    DeliveryAction.EDIT: "update_delivery",
    DeliveryAction.DELETE: "delete_delivery",
    DeliveryAction.SEND_PROOF: "send_proof",
    DeliveryAction.COMPUTE_STATS: "compute_stats",
}


def declared(field: object) -> list[object]:
    """The roles a field's permissions ask for."""
    return [
        getattr(permission, "role", None)
        for extension in getattr(field, "extensions", [])
        if isinstance(extension, PermissionExtension)
        for permission in extension.permissions
    ]


def test_every_root_field_declares_who_may_resolve_it() -> None:
    for root in (Query, Mutation, Subscription):
        for field in root.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            assert declared(field), f"{root.__name__}.{field.python_name} has no needs(...)"


def test_each_action_s_mutation_declares_the_role_of_the_action_table() -> None:
    fields = {f.python_name: f for f in Mutation.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    assert set(MUTATIONS) == set(ACTIONS)
    for action, name in MUTATIONS.items():
        assert declared(fields[name]) == [role_of(action)], name


def test_no_resolver_checks_roles_by_itself() -> None:
    calls = re.compile(r"\brequire(_any_role)?\(")
    found = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "graphql_schema").rglob("*.py")
        if path.name != "permissions.py" and calls.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []
