"""The root schema: one folder per domain area, merged here, with the request limits."""

from collections.abc import Callable
from dataclasses import dataclass

import strawberry
from graphql import (
    ASTValidationRule,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import (
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from graphql_schema.addresses.mutations import AddressMutations
from graphql_schema.addresses.queries import AddressQueries
from graphql_schema.audit.queries import AuditQueries
from graphql_schema.caches import LimitedCachedDocuments
from graphql_schema.deliveries.mutations import DeliveryMutations
from graphql_schema.deliveries.queries import DeliveryQueries
from graphql_schema.deliveries.subscriptions import DeliverySubscriptions
from graphql_schema.document_limits import RepeatedFields
from graphql_schema.errors import ErrorCodes
from graphql_schema.execution import Executor
from graphql_schema.operators.resolvers import OperatorMutations, OperatorQueries
from graphql_schema.profiles.mutations import ProfileMutations
from graphql_schema.profiles.queries import ProfileQueries
from graphql_schema.profiles.subscriptions import ProfileSubscriptions
from graphql_schema.proofs.mutations import ProofMutations
from graphql_schema.proofs.queries import ProofQueries
from graphql_schema.results import ResultCache
from graphql_schema.stream_hooks import StreamRunner
from graphql_schema.strings import StorableStrings
from models.errors import DomainError

Query = merge_types(
    "Query",
    (
        DeliveryQueries,
        ProfileQueries,
        OperatorQueries,
        AddressQueries,
        AuditQueries,
        ProofQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        ProfileMutations,
        DeliveryMutations,
        OperatorMutations,
        AddressMutations,
        ProofMutations,
    ),
)
Subscription = merge_types("Subscription", (DeliverySubscriptions, ProfileSubscriptions))


class Schema(strawberry.Schema):
    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        """A stream's results cost only the hooks they need (graphql_schema/stream_hooks.py)."""
        return StreamRunner(execution_context, extensions)

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
    max_tokens: int = 1000
    max_cost: int = 20_000
    result_cache_size: int = 256  # answers of queries kept until the database changes; 0: off
    result_cache_bytes: int = 32 * 1024 * 1024  # and at most this much of their JSON


def _unknown_fragments_left_to_graphql(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """strawberry's depth limiter measures every operation as it is built, and a spread of a
    fragment the document does not define made it raise KeyError: `{ ...Missing }` was an
    internal error. Such a document has no depth to measure: graphql-core's own rule refuses
    it ("Unknown fragment")."""

    def __init__(self: ValidationRule, context: ValidationContext) -> None:
        try:
            rule.__init__(self, context)  # the limiter does all its work here
        except KeyError:
            ValidationRule.__init__(self, context)

    return type(rule.__name__, (rule,), {"__init__": __init__, "__doc__": rule.__doc__})


def limit_rules(options: SchemaOptions) -> list[type[ASTValidationRule]]:
    """The depth and alias limits (and, in production, no introspection) as validation rules,
    with the check of string literals (graphql_schema/strings.py).

    Built once per schema, not per request: strawberry's limiters make a new rule class each
    time they are constructed, and the validation cache keys on the rule classes, so limiters
    built per request would miss the cache on every request (strawberry issue 4635). Here the
    same classes go into every request's validation, which the cache then remembers.
    """
    rules: list[type[ASTValidationRule]] = [
        StorableStrings,  # not a limit, but cached the same way
        RepeatedFields,
        *map(
            _unknown_fragments_left_to_graphql,
            QueryDepthLimiter(options.max_depth).validation_rules,
        ),
        *MaxAliasesLimiter(max_alias_count=options.max_aliases).validation_rules,
    ]
    if options.production:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


def extensions(options: SchemaOptions) -> list[Callable[[], SchemaExtension]]:
    """Fresh extension instances per request (factories), sharing the rule classes above.

    The token limit is a parse option, so it holds for cached parses too (it is part of the
    parse cache's key); the depth and alias limits are part of the cached validation.
    """
    rules = tuple(limit_rules(options))
    return [
        lambda: ErrorCodes(hide_suggestions=options.production),
        lambda: LimitedCachedDocuments(options.max_tokens, rules, options.max_cost),
    ]


def build_schema(options: SchemaOptions | None = None) -> strawberry.Schema:
    options = options or SchemaOptions()
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions(options),
        config=StrawberryConfig(disable_field_suggestions=options.production),
        execution_context_class=executor_class(options),
    )


def executor_class(options: SchemaOptions) -> type[Executor]:
    """The executor with this schema's own result cache (graphql_schema/results.py)."""
    if options.result_cache_size <= 0:
        return Executor
    results = ResultCache(options.result_cache_size, options.result_cache_bytes)
    return type("CachingExecutor", (Executor,), {"results": results})


schema = build_schema()
