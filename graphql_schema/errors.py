"""Every GraphQL error carries one of the contract's codes in `extensions.code`.

Domain errors bring their own code; a request the schema rejects (syntax, unknown field, bad
enum or variable) is BAD_USER_INPUT; anything unexpected is logged and masked.
"""

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult

from models.errors import DomainError, PreparationFailed

log = logging.getLogger("graphql_schema")

INTERNAL = "INTERNAL_SERVER_ERROR"


def coded(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    extensions = dict(error.extensions or {})
    if isinstance(original, DomainError):
        extensions["code"] = original.code
        if isinstance(original, PreparationFailed):
            extensions["errors"] = original.errors
        return _with(error, error.message, extensions)
    if original is None or isinstance(original, GraphQLError):
        # The schema rejected the request: syntax, validation, or a variable's value (a bad
        # enum value or DateTime in variables arrives wrapped in a GraphQLError).
        extensions.setdefault("code", "BAD_USER_INPUT")
        return _with(error, error.message, extensions)
    log.error("unexpected error in %s", error.path, exc_info=original)
    return _with(error, "internal error", {"code": INTERNAL})


def _with(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [coded(e) for e in result.errors]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Subscriptions send their results (and errors) through here, not on_operation."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [coded(e) for e in errors]  # type: ignore[union-attr]
        yield
