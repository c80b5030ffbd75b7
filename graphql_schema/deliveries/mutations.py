"""Changing deliveries: each mutation checks the role, runs one domain transaction, then
publishes the change (after the commit)."""

from typing import Annotated

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.deliveries.inputs import CreateDeliveryInput, UpdateDeliveryInput
from graphql_schema.deliveries.inputs import patch as patch_change
from graphql_schema.deliveries.types import Delivery, DeploymentKpis
from graphql_schema.pagination import parse_id
from graphql_schema.permissions import needs, operator_of
from models import lifecycle
from models.actions import DeliveryAction as A
from models.actions import role_of
from models.audit import Actor
from models.delivery import utcnow
from models.enums import Role
from models.errors import BadInput
from models.stats import compute_stats


@strawberry.type
class DeliveryMutations:
    @strawberry.mutation(extensions=needs(Role.PREPARE_DELIVERIES))
    async def create_delivery(
        self, info: Info[Context, None], input: CreateDeliveryInput
    ) -> Delivery:
        by = Actor.of(operator_of(info))
        created = await lifecycle.create_delivery(input.draft(), info.context.default_mode, by)
        return Delivery.of(created)

    @strawberry.mutation(
        description="Edit a DRAFT or READY delivery; it goes back to DRAFT and loses its approval."
        " `patch`: only the fields given change. `input` (deprecated): the whole content again."
        " Give one of them. An omitted requireApproval keeps its value; only APPROVE_DELIVERIES"
        " (or ADMINISTRATION) may turn it off.",
        extensions=needs(role_of(A.EDIT)),
    )
    async def update_delivery(
        self,
        info: Info[Context, None],
        id: strawberry.ID,
        input: Annotated[
            CreateDeliveryInput | None,
            strawberry.argument(deprecation_reason="Use `patch`: only the fields given change."),
        ] = None,
        patch: UpdateDeliveryInput | None = None,  # type: ignore[valid-type]
    ) -> Delivery:
        by = Actor.of(operator_of(info))
        if (input is None) == (patch is None):
            raise BadInput("give either `patch` or `input` (not both)")
        change = input.draft() if input is not None else patch_change(patch)
        updated = await lifecycle.update_delivery(parse_id(id, "delivery"), change, by)
        await info.context.changed(updated.id)
        return Delivery.of(updated)

    @strawberry.mutation(
        description="Delete a DRAFT or READY delivery.", extensions=needs(role_of(A.DELETE))
    )
    async def delete_delivery(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        by = Actor.of(operator_of(info))
        delivery_id = parse_id(id, "delivery")
        await lifecycle.delete_delivery(delivery_id, by)
        await info.context.changed(delivery_id)
        return True

    @strawberry.mutation(extensions=needs(role_of(A.PREPARE)))
    async def prepare_delivery(self, info: Info[Context, None], id: strawberry.ID) -> Delivery:
        by = Actor.of(operator_of(info))
        prepared = await lifecycle.prepare_delivery(parse_id(id, "delivery"), by)
        await info.context.changed(prepared.id)
        return Delivery.of(prepared)

    @strawberry.mutation(extensions=needs(role_of(A.APPROVE)))
    async def approve_delivery(self, info: Info[Context, None], id: strawberry.ID) -> Delivery:
        by = Actor.of(operator_of(info))
        approved = await lifecycle.approve_delivery(parse_id(id, "delivery"), by, utcnow())
        await info.context.changed(approved.id)
        return Delivery.of(approved)

    @strawberry.mutation(
        description="Send: READY or PENDING_CONFIRMATION -> SCHEDULED / IN_PROGRESS. `version`:"
        " the Delivery.version you reviewed; INVALID_STATE if the delivery changed since.",
        extensions=needs(role_of(A.CONFIRM)),
    )
    async def confirm_send(
        self, info: Info[Context, None], delivery_id: strawberry.ID, version: int | None = None
    ) -> Delivery:
        by = Actor.of(operator_of(info))
        confirmed = await lifecycle.confirm_send(
            parse_id(delivery_id, "delivery"), by, utcnow(), version
        )
        await info.context.changed(confirmed.id)
        await info.context.wake_engine()
        return Delivery.of(confirmed)

    @strawberry.mutation(extensions=needs(role_of(A.PAUSE)))
    async def pause_delivery(self, info: Info[Context, None], id: strawberry.ID) -> Delivery:
        by = Actor.of(operator_of(info))
        paused = await lifecycle.pause_delivery(parse_id(id, "delivery"), by)
        await info.context.changed(paused.id, paused.status.value)
        return Delivery.of(paused)

    @strawberry.mutation(extensions=needs(role_of(A.RESUME)))
    async def resume_delivery(self, info: Info[Context, None], id: strawberry.ID) -> Delivery:
        by = Actor.of(operator_of(info))
        resumed = await lifecycle.resume_delivery(parse_id(id, "delivery"), by)
        await info.context.changed(resumed.id, resumed.status.value)
        await info.context.wake_engine()
        return Delivery.of(resumed)

    @strawberry.mutation(extensions=needs(role_of(A.STOP)))
    async def stop_delivery(self, info: Info[Context, None], id: strawberry.ID) -> Delivery:
        by = Actor.of(operator_of(info))
        stopped = await lifecycle.stop_delivery(parse_id(id, "delivery"), by, utcnow())
        await info.context.changed(stopped.id, stopped.status.value)
        return Delivery.of(stopped)

    @strawberry.mutation(extensions=needs(role_of(A.COMPUTE_STATS)))
    async def compute_stats(
        self, info: Info[Context, None], delivery_id: strawberry.ID
    ) -> DeploymentKpis:
        delivery_pk = parse_id(delivery_id, "delivery")
        kpis = await compute_stats(delivery_pk, utcnow())
        await info.context.changed(delivery_pk)
        return DeploymentKpis.of(kpis, delivery_pk)
