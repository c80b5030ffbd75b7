"""GraphQL over HTTP (graphql.github.io/graphql-over-http): the response's media type and status.

A client that asks for `application/graphql-response+json` gets it, with the spec's status codes:
400 and no `data` entry when the request fails before execution (syntax, validation, variables),
200 once it executes. Any other client gets `application/json` and 200 for every well-formed
request, as before the spec. A request that accepts neither gets 406 before anything runs.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, TypeVar

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

T = TypeVar("T")
GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# Order breaks ties: `*/*` (curl, httpx, browsers) and `application/*` mean JSON, which every
# client before the spec understands.
SUPPORTED = (JSON, GRAPHQL_RESPONSE)
# The answer to a request without a query (`curl http://…/graphql`, an empty POST): how to send one.
NO_QUERY = (
    "No GraphQL query found in the request: POST a JSON body such as"
    ' {"query": "{ me { name } }"} with Content-Type: application/json and'
    " Authorization: Bearer TOKEN, or GET this URL with ?query=... (queries only)"
)


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their weights, in the order given."""
    ranges = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media.lower(), q))
    return ranges


def _weight(media: str, ranges: list[tuple[str, float]]) -> tuple[float, int]:
    """(q, -position) of the most specific range that matches `media` (RFC 9110 12.5.1)."""
    kind = media.split("/", 1)[0] + "/*"
    best: tuple[int, float, int] | None = None  # (specificity, q, position)
    for position, (pattern, q) in enumerate(ranges):
        specificity = {media: 2, kind: 1, "*/*": 0}.get(pattern)
        if specificity is not None and (best is None or specificity > best[0]):
            best = (specificity, q, position)
    return (0.0, 0) if best is None else (best[1], -best[2])


@lru_cache(maxsize=256)  # clients send a handful of distinct Accept headers, every request
def negotiate(accept: str | None) -> str | None:
    """The media type to answer with, or None when the client accepts none we serve (406).

    The highest q wins, then the range listed first; no Accept header means JSON.
    """
    if not accept or not accept.strip():
        return JSON
    ranges = _ranges(accept)
    weights = {media: _weight(media, ranges) for media in SUPPORTED}
    media = max(SUPPORTED, key=lambda m: weights[m])
    return media if weights[media][0] > 0 else None


async def execute(
    schema: BaseSchema, method: str, request: GraphQLRequestData, context: Any
) -> ExecutionResult:
    """Run one operation of an HTTP request (strawberry's own would also run subscriptions over
    GET and POST, which end in an internal error: they belong to the WebSocket)."""
    allowed = (
        {OperationType.QUERY} if method == "GET" else {OperationType.QUERY, OperationType.MUTATION}
    )
    try:
        return await schema.execute(
            request.query,
            variable_values=request.variables,
            context_value=context,
            operation_name=request.operation_name,
            allowed_operation_types=allowed,
            operation_extensions=request.extensions,
        )
    except InvalidOperationTypeError as error:
        if error.operation_type == OperationType.SUBSCRIPTION:
            raise HTTPException(
                400, "subscriptions run over a WebSocket to this URL (graphql-transport-ws)"
            ) from error
        # The spec's answer to a mutation over GET (GET must stay safe: no side effects).
        raise HTTPException(405, "mutations are not allowed over GET: use POST") from error
    except CannotGetOperationTypeError as error:
        # A GraphQL request error (no such operationName, or several operations and no name).
        coded = GraphQLError(error.as_http_error_reason(), extensions={"code": "BAD_USER_INPUT"})
        return ExecutionResult(data=None, errors=[coded])
    except MissingQueryError as error:
        raise HTTPException(400, NO_QUERY) from error


def is_request_error(result: ExecutionResult) -> bool:
    """Did the request fail before execution? Then GraphQL says there is no `data` entry.

    Field errors raised while executing always carry a `path`; errors of parsing, validation
    (limits included) and variable coercion never do.
    """
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def error_response(
    status: int,
    message: str,
    media_type: str | None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, object] | None = None,
    *,
    code: str = "BAD_USER_INPUT",
) -> Response:
    """A request refused before GraphQL ran, still as a GraphQL response with a contract code
    (`extensions`, when given, replace the bare `{"code": code}`)."""
    error = GraphQLError(message, extensions=extensions or {"code": code}).formatted
    body = json.dumps({"errors": [error]}, separators=(",", ":"))
    return Response(
        body, status_code=status, media_type=f"{media_type or JSON}; charset=utf-8", headers=headers
    )


async def unless_disconnected(request: Request, work: Callable[[], Awaitable[T]]) -> T | None:
    """Run `work()` (the request's execution) unless the client goes away first: then it is
    cancelled, and None is returned (there is nobody to answer). A mutation that has started
    executing is left to finish, so that what it commits is also published.

    The body is read first (bounded by MAX_BODY_BYTES): after it, the only message the server
    can receive is the disconnect."""
    if request.method == "POST":
        await request.body()
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        context = getattr(request.state, "graphql_context", None)
        if not getattr(context, "mutating", False):
            gone = True
            task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work()
    except asyncio.CancelledError:
        if gone and task.uncancel() == 0:
            return None
        raise
    finally:
        watcher.cancel()
