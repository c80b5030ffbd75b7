"""GraphQL over HTTP runs for operators only: the token is checked before the query is parsed.

Parsing and validating a document costs far more than looking a token up (a cached token costs
a dictionary read), so a request without a valid operator is refused before either: no token can
make the server parse anything. The refusal is HTTP 401 with `WWW-Authenticate: Bearer` and a
GraphQL-shaped body whose code is UNAUTHENTICATED (docs/auth-limits.md):

- no `Authorization` header: "authentication required ...", not counted as a failed
  authentication (nothing was guessed);
- a header that is not `Bearer TOKEN` of a current operator: "the bearer token is not valid",
  counted against the client's failed-authentication limit (auth_failures.py), and refused
  with 429 once over it, before the token is looked at.

What needs no operator: `GET /graphql` without a `query` (GraphiQL's page, or 404/400).
"""

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from graphql_schema.permissions import BAD_TOKEN, MISSING_TOKEN
from models.operator import Operator
from server.http import auth_failures
from server.http.graphql_http import GRAPHQL_RESPONSE, JSON, error_response, negotiate
from server.http.token_cache import TokenCache


def bearer(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def needs_operator(request: Request) -> bool:
    """Every GraphQL request; not GraphiQL's page (a GET without `query`) nor other methods."""
    if request.method == "POST":
        return True
    return request.method == "GET" and "query" in request.query_params


def _refused(message: str, media_type: str, error: str | None = None) -> Response:
    challenge = 'Bearer realm="graphql"' + (f', error="{error}"' if error else "")
    return error_response(
        401, message, media_type, {"WWW-Authenticate": challenge}, code="UNAUTHENTICATED"
    )


async def authenticate(
    request: Request, tokens: TokenCache, media_type: str | None = None
) -> Operator | Response:
    """The request's operator, or the response that refuses it (406, 401 or 429). The plain
    HTTP endpoints for operators (the CSV upload and exports) pass the JSON `media_type` their
    errors are written in: they answer CSV, whatever the client accepts."""
    media_type = media_type or negotiate(request.headers.get("accept"))
    if media_type is None:
        reason = f"Not Acceptable: send Accept: {GRAPHQL_RESPONSE} or {JSON}"
        return error_response(406, reason, None)
    header = request.headers.get("authorization")
    if header is None:
        return _refused(MISSING_TOKEN, media_type)
    wait = auth_failures.retry_after(request.scope)
    if wait is not None:
        return PlainTextResponse(
            auth_failures.refusal_message(wait), 429, {"Retry-After": str(wait)}
        )
    operator = await tokens.operator(bearer(header))
    if operator is None:
        auth_failures.record_failure(request)
        return _refused(BAD_TOKEN, media_type, "invalid_token")
    return operator
