"""Parse and validation caches, for the documents clients send again and again.

A dashboard sends the same few documents all day: parsing and validating them again on every
request cost 5 to 10 times the rest of a simple query (bench/validation_cache.py). strawberry's
`ParserCache` and `ValidationCache` remember both, in bounded LRUs shared across requests.

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
from collections.abc import Iterator

from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

CACHED_QUERY_CHARS = 2048  # the dashboard's queries: under 600; GraphiQL's introspection: 2,068
CACHE_SIZE = 128


def _small(query: str | None) -> bool:
    return query is not None and len(query) <= CACHED_QUERY_CHARS


class LimitedCachedDocuments(SchemaExtension):
    """The token limit, the extra validation rules (depth, aliases, introspection) and both
    caches in one extension: strawberry's MaxTokensLimiter, AddValidationRules, ParserCache
    and ValidationCache do the same as four, and every extension costs its hooks on every
    request (bench/RESULTS.md, the HTTP section). The LRUs are strawberry's own, shared by
    every request. The validation cache is keyed on the rule classes: they must be the same
    objects on every request (see graphql_schema/schema.py, strawberry issue 4635)."""

    def __init__(self, max_tokens: int, rules: tuple[type[ASTValidationRule], ...]) -> None:
        super().__init__()
        self.max_tokens, self.rules = max_tokens, rules

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

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if _small(context.query):
            context.pre_execution_errors = _get_validate_cache(CACHE_SIZE)(
                context.schema._schema, context.graphql_document, context.validation_rules
            )
        yield
