"""The strawberry ASGI app: authentication over HTTP and in the WebSocket `connection_init`."""

from contextvars import ContextVar
from datetime import timedelta

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UnsetType

from graphql_schema.context import Context
from graphql_schema.schema import SchemaOptions, build_schema
from server.bus import DELIVERY_TOPIC, ENGINE_TOPIC, EventBus
from server.http import auth_failures
from server.http.graphiql import graphiql_page
from server.http.graphql_http import (
    GRAPHQL_RESPONSE,
    JSON,
    error_response,
    execute,
    is_request_error,
    negotiate,
)
from server.http.token_cache import TokenCache
from server.http.websocket_guard import websocket_origins
from server.progress import ProgressHub
from server.settings import Settings

# The WebSocket whose `connection_init` on_ws_connect is checking: strawberry calls get_context
# and then on_ws_connect in the connection's own task, and hands on_ws_connect only the context.
_websocket: ContextVar[WebSocket | None] = ContextVar("websocket", default=None)


def bearer(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class GraphQLApp(GraphQL[Context, None]):
    def __init__(self, settings: Settings, bus: EventBus, hub: ProgressHub) -> None:
        options = SchemaOptions(
            production=settings.production,
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_query_aliases,
            max_tokens=settings.max_query_tokens,
        )
        super().__init__(
            build_schema(options),
            graphql_ide="graphiql",  # rendered by render_graphql_ide: our offline page
            allow_queries_via_get=True,  # queries only: a mutation over GET is a 405
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
            allowed_origins=websocket_origins(settings.allowed_origins),
        )
        self.settings, self.bus, self.hub = settings, bus, hub
        self.tokens = TokenCache(settings.token_cache_seconds)

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL for browsers (Accept: text/html) outside production; other GETs without a
        query answer 404 as they always did."""
        if self.settings.production or "text/html" not in request.headers.get("accept", ""):
            return PlainTextResponse("Not Found", status_code=404)
        return graphiql_page(self.settings, request)

    # ---- GraphQL over HTTP: media types and status codes (server/http/graphql_http.py) ----

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """strawberry refuses a bad HTTP request in plain text; here it is a GraphQL response in
        the negotiated media type, with a contract code (and `Allow` on a 405)."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as error:
            allow = "POST" if request.method == "GET" else "GET, POST"
            response = error_response(
                error.status_code,
                error.reason,
                negotiate(request.headers.get("accept")),
                {"Allow": allow} if error.status_code == 405 else None,
            )
        await response(scope, receive, send)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """406 before anything runs when the client accepts no media type we answer in; 400
        for an operationName that is not a string (strawberry checks the other parameters)."""
        if negotiate(request.headers.get("accept")) is None:
            raise HTTPException(406, f"Not Acceptable: send Accept: {GRAPHQL_RESPONSE} or {JSON}")
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData) and not isinstance(data.operation_name, str | None):
            raise HTTPException(400, "`operationName` must be a string or null, if provided")
        return data

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Queries over GET and POST, mutations over POST only (405 over GET), subscriptions
        over the WebSocket only; then the status the negotiated media type calls for."""
        result = await execute(self.schema, request_adapter.method, request_data, context)
        sub_response.media_type = negotiate(request.headers.get("accept"))
        if sub_response.media_type == GRAPHQL_RESPONSE and is_request_error(result):
            sub_response.status_code = 400
        return result

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """With graphql-response+json, a request that never executed has no `data` entry."""
        response = await super().process_result(request, result)
        media = negotiate(request.headers.get("accept"))
        if media == GRAPHQL_RESPONSE and is_request_error(result):
            response.pop("data", None)
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = f"{sub_response.media_type or JSON}; charset=utf-8"
        response.headers["vary"] = "Accept"
        return response

    def _context(self) -> Context:
        bus = self.bus

        async def changed(delivery_id: int, status: str | None = None) -> None:
            payload: dict[str, object] = {"id": delivery_id}
            if status is not None:
                payload["status"] = status
            await bus.publish(DELIVERY_TOPIC, payload)

        async def wake_engine() -> None:
            await bus.publish(ENGINE_TOPIC, {})

        return Context(
            operator=None,
            token_given=False,
            default_mode=self.settings.feedback_mode,
            changed=changed,
            wake_engine=wake_engine,
            progress=self.hub,
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        """A bad token counts against the client's authentication failures (a missing one is
        anonymous and does not); over the limit, a request with a token is a 429."""
        context = self._context()
        if isinstance(request, Request):
            header = request.headers.get("authorization")
            token = bearer(header)
            context.token_given = header is not None
            if header is not None:
                auth_failures.check(request)
                context.operator = await self.tokens.operator(token)
                if context.operator is None:
                    auth_failures.record_failure(request)
        else:
            _websocket.set(request)
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        value = params.get("Authorization", params.get("authorization"))
        token = bearer(value)
        operator = await self.tokens.operator(token)
        if operator is None:
            websocket = _websocket.get()
            if value is not None and websocket is not None:
                auth_failures.record_failure(websocket)
            reason = "bad bearer token" if token else "missing Authorization in connection_init"
            raise ConnectionRejectionError({"message": reason, "code": "UNAUTHENTICATED"})
        context.operator, context.token_given = operator, True
        return UnsetType()  # a plain {"type": "connection_ack"}, without "payload": null
