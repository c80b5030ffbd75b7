"""Parse and validation caches, for the documents clients send again and again.

A dashboard sends the same few documents all day: parsing and validating them again on every
request cost 5 to 10 times the rest of a simple query (bench/validation_cache.py). strawberry's
parse cache remembers the syntax tree of a text, and `known_documents` what was worked out
about that tree (its validation, its cost plan, its variables' bounds), in bounded LRUs
shared across requests.

Two changes make them safe to expose:
- only documents up to CACHED_QUERY_CHARS characters are cached. A cached document keeps its
  whole syntax tree alive, up to about 280 bytes for every character of query text (measured
  on documents made of one-letter fields), so a cache of 128 unbounded documents (up to the
  token limit, or one 2 MiB string) could be made to hold hundreds of MiB; with the bound, a
  full cache holds at most about 128 x 2 KiB x 280 B = 70 MiB, typically a few MiB;
- a document that does not parse is left to strawberry's own parse, which reports the syntax
  error (or the token limit) the usual way, with its BAD_USER_INPUT code. Raised from the
  cache's hook, the error would skip the extensions that add the code.
"""

import contextlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types.graphql import OperationType

from graphql_schema.context import Context
from graphql_schema.cost import cost_error, plan_for
from graphql_schema.document_limits import explained
from graphql_schema.input_bounds import bounds_for
from graphql_schema.validation import validate

CACHED_QUERY_CHARS = 2048  # the dashboard's queries: under 600; GraphiQL's introspection: 2,068
CACHE_SIZE = 128
# the rules strawberry's own validation adds to every request's
STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)


def _small(query: str | None) -> bool:
    return query is not None and len(query) <= CACHED_QUERY_CHARS


MULTIPLE_OPERATIONS = "Must provide operation name if query contains multiple operations."


class _PerDocument:
    """What the server worked out about the documents the parse cache holds (their validation
    errors, their cost plan), by the document's identity: the parse cache hands the same object
    for the same text, and looking a document up by its identity costs nothing, where hashing
    it walks the whole tree (strawberry's validation cache did, on every request)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[int, tuple[DocumentNode, dict[Any, Any]]] = OrderedDict()
        self.computed: Counter[str] = Counter()  # by kind: misses
        self.reused: Counter[str] = Counter()  # by kind: hits

    def get(self, document: DocumentNode, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """`key[0]` names the kind of value (for the counters)."""
        entry = self.entries.get(id(document))
        if entry is None or entry[0] is not document:
            # holding the document keeps its identity unique
            entry = self.entries[id(document)] = (document, {})
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(id(document))
        known = entry[1]
        if key in known:
            self.reused[key[0]] += 1
            return known[key]
        self.computed[key[0]] += 1
        value = known[key] = compute()
        return value


known_documents = _PerDocument(CACHE_SIZE)


def _several_operations(document: DocumentNode) -> bool:
    operations = (d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return next(operations, None) is not None and next(operations, None) is not None


class LimitedCachedDocuments(SchemaExtension):
    """The token limit, the extra validation rules (depth, aliases, repeated fields,
    introspection), the query cost and both caches in one extension: strawberry's
    MaxTokensLimiter, AddValidationRules, ParserCache and ValidationCache do the same as four,
    and every extension costs its hooks on every request (bench/RESULTS.md, the HTTP section).
    The parse LRU is strawberry's own, shared by every request; the validation is
    graphql_schema/validation.py's, remembered per rule classes: they must be the same objects
    on every request (see graphql_schema/schema.py, strawberry issue 4635).

    Request errors are checked here too: a document with several operations and no
    `operationName` (the GraphQL spec; strawberry would run the first), and, once the document
    is valid, a list in the variables over its bound (graphql_schema/input_bounds.py, before
    graphql-core coerces it) and a cost over `max_cost` with the request's variables
    (graphql_schema/cost.py).
    """

    def __init__(
        self, max_tokens: int, rules: tuple[type[ASTValidationRule], ...], max_cost: int
    ) -> None:
        super().__init__()
        self.max_tokens, self.rules, self.max_cost = max_tokens, rules, max_cost

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens  # so cached parses keep it too
        context.validation_rules = context.validation_rules + self.rules
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if _small(context.query):
            with contextlib.suppress(GraphQLError):  # strawberry parses it again and says why
                context.graphql_document = _get_parse_cache(CACHE_SIZE)(
                    context.query, **context.parse_options
                )
        yield
        document = context.graphql_document
        named = getattr(context, "_provided_operation_name", None) is not None
        if document is not None and not named and _several_operations(document):
            context.pre_execution_errors = [GraphQLError(MULTIPLE_OPERATIONS)]

    def on_validate(self) -> Iterator[None]:
        """Validation (cached for small documents), then the lists in the variables, then the
        cost. All of it before the yield: strawberry looks at the errors before the hook
        resumes."""
        context = self.execution_context
        if context.pre_execution_errors is None:  # else refused already (on_parse)
            context.pre_execution_errors = self.validate()
        yield

    def validate(self) -> list[GraphQLError]:
        context = self.execution_context
        schema, document = context.schema._schema, context.graphql_document
        assert document is not None
        rules = (*context.validation_rules, *STRAWBERRY_RULES)
        small = _small(context.query)

        def worked_out(key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
            """Remembered with the document when the parse cache keeps it, else computed."""
            return known_documents.get(document, key, compute) if small else compute()

        errors = worked_out(
            ("validation", id(schema), rules), lambda: validate(schema, document, rules)
        )
        if errors:
            return explained(errors)
        operation_name = getattr(context, "_provided_operation_name", None)
        bounds = worked_out(("inputs", id(schema)), lambda: bounds_for(schema, document))
        operator = context.context.operator if isinstance(context.context, Context) else None
        too_many = bounds.error(operation_name, context.variables, operator)
        if too_many is not None:
            return [too_many]
        plan = worked_out(("plan", id(schema)), lambda: plan_for(schema, document))
        cost = plan.cost(operation_name, context.variables)
        if cost > self.max_cost:
            return [cost_error(cost, self.max_cost)]
        if isinstance(context.context, Context):
            context.context.mutating = context.operation_type is OperationType.MUTATION
        return []
