"""The root schema: one folder per domain area, merged here."""

from dataclasses import dataclass

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ValidationCache
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from graphql_schema.addresses.mutations import AddressMutations
from graphql_schema.addresses.queries import AddressQueries
from graphql_schema.deliveries.mutations import DeliveryMutations
from graphql_schema.deliveries.queries import DeliveryQueries
from graphql_schema.deliveries.subscriptions import DeliverySubscriptions
from graphql_schema.errors import ErrorCodes
from graphql_schema.operators.resolvers import OperatorMutations, OperatorQueries
from graphql_schema.profiles.mutations import ProfileMutations
from graphql_schema.profiles.queries import ProfileQueries
from models.errors import DomainError

from graphql_schema.audit.queries import AuditQueries
Query = merge_types(
    "Query", (DeliveryQueries, ProfileQueries, OperatorQueries, AddressQueries, AuditQueries)
)
Mutation = merge_types(
    "Mutation", (ProfileMutations, DeliveryMutations, OperatorMutations, AddressMutations)
)
Subscription = merge_types("Subscription", (DeliverySubscriptions,))


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what is unexpected: domain and request errors are the client's business."""
        unexpected = [
            e
            for e in errors
            if e.original_error is not None
            and not isinstance(e.original_error, DomainError | GraphQLError)
        ]
        if unexpected:
            super().process_errors(unexpected, execution_context)


@dataclass(frozen=True)
class SchemaOptions:
    """What the server's settings decide about the schema (graphql_schema reads no settings)."""

    production: bool = False
    max_depth: int = 15
    max_aliases: int = 30
    max_tokens: int = 5000


def build_schema(options: SchemaOptions | None = None) -> strawberry.Schema:
    options = options or SchemaOptions()
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[ErrorCodes, lambda: ValidationCache(maxsize=256)],
    )


schema = build_schema()
