"""What an operator may do to a delivery now: each action's lifecycle step and role, the one
table that the mutations' role checks (graphql_schema: `needs(role_of(...))`) and
`Delivery.allowedActions` both read, so that a screen never copies these rules."""

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from models.delivery import Delivery
from models.enums import Role, holds
from models.lifecycle import refusal


class DeliveryAction(StrEnum):
    PREPARE = "PREPARE"
    APPROVE = "APPROVE"
    CONFIRM = "CONFIRM"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    STOP = "STOP"
    EDIT = "EDIT"
    DELETE = "DELETE"
    SEND_PROOF = "SEND_PROOF"
    COMPUTE_STATS = "COMPUTE_STATS"


A = DeliveryAction
# action: (its step in LIFECYCLE, or None when any status allows it; the role it needs)
ACTIONS: dict[DeliveryAction, tuple[str | None, Role]] = {
    A.PREPARE: ("prepare", Role.PREPARE_DELIVERIES),
    A.APPROVE: ("approve", Role.APPROVE_DELIVERIES),
    A.CONFIRM: ("confirm", Role.START_DELIVERIES),
    A.PAUSE: ("pause", Role.START_DELIVERIES),
    A.RESUME: ("resume", Role.START_DELIVERIES),
    A.STOP: ("stop", Role.START_DELIVERIES),
    A.EDIT: ("edit", Role.PREPARE_DELIVERIES),
    A.DELETE: ("delete", Role.PREPARE_DELIVERIES),
    A.SEND_PROOF: ("send_proof", Role.PREPARE_DELIVERIES),
    A.COMPUTE_STATS: (None, Role.START_DELIVERIES),
}


def role_of(action: DeliveryAction) -> Role:
    return ACTIONS[action][1]


def allowed_actions(
    delivery: Delivery, roles: Iterable[Role], now: datetime
) -> list[DeliveryAction]:
    """The actions these roles may take on `delivery` now, in ACTIONS' order."""
    held = frozenset(roles)
    return [
        action
        for action, (step, role) in ACTIONS.items()
        if holds(held, role) and (step is None or refusal(delivery, step, now) is None)
    ]
