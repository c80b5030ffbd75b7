"""previewDelivery: one profile's copy before the confirm."""

import strawberry
from strawberry.types import Info

from graphql_schema.context import Context
from graphql_schema.pagination import parse_id
from graphql_schema.permissions import ANY_ROLE, needs
from graphql_schema.proofs.types import DeliveryPreview
from models.proofs import preview_delivery


@strawberry.type
class ProofQueries:
    @strawberry.field(
        description="The subject, HTML and text exactly as this profile would receive them."
        " Any role (it shows the profile's personal data, which an operator without a role"
        " may not read).",
        extensions=needs(ANY_ROLE),
    )
    async def preview_delivery(
        self, info: Info[Context, None], id: strawberry.ID, profile_id: strawberry.ID
    ) -> DeliveryPreview:
        preview = await preview_delivery(
            parse_id(id, "delivery"), parse_id(profile_id, "profile"), info.context.tracker
        )
        return DeliveryPreview.of(preview)
