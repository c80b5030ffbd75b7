"""Every GraphQL error carries one of the contract's codes in `extensions.code`.

Domain errors bring their own code; a request the schema rejects (syntax, unknown field, bad
enum or variable, a query over the depth, alias or token limits, introspection in production) is
BAD_USER_INPUT; a database that is full or out of reach is said in plain words (nothing was
stored, or the request did not complete); anything else unexpected is logged and masked.
"""

import logging
import re
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult

from models.errors import DomainError, PreparationFailed, storage_failure

log = logging.getLogger("graphql_schema")

INTERNAL = "INTERNAL_SERVER_ERROR"
# graphql-core ends a message with its suggestions: " Did you mean 'label', or 'status'?"
SUGGESTION = re.compile(r"\s*Did you mean .*\?$", re.DOTALL)


def without_suggestions(message: str) -> str:
    """Names of fields, arguments, types and enum values the client did not ask for leak the
    schema: production mode drops every suggestion (strawberry's own option drops only those
    of unknown fields)."""
    return SUGGESTION.sub("", message)


def coded(error: GraphQLError, *, hide_suggestions: bool = False) -> GraphQLError:
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
        message = without_suggestions(error.message) if hide_suggestions else error.message
        return _with(error, message, extensions)
    storage = storage_failure(original)
    if storage is not None:  # the database's state, not a bug: say so, without a traceback
        log.error("database failure in %s: %s (%s)", error.path, storage, original)
        return _with(error, storage, {"code": INTERNAL, "reason": "STORAGE"})
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
    # on_stream_result does nothing to a result without errors: a subscription's snapshots
    # skip it (graphql_schema/stream_hooks.py)
    stream_hook_on_errors_only = True

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        self.hide_suggestions = hide_suggestions

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [
                coded(e, hide_suggestions=self.hide_suggestions) for e in result.errors
            ]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Subscriptions send their results (and errors) through here, not on_operation."""
        errors = getattr(result, "errors", None)
        if errors:
            hide = self.hide_suggestions
            result.errors = [coded(e, hide_suggestions=hide) for e in errors]  # type: ignore[union-attr]
        yield
