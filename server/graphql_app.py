"""The strawberry ASGI app: authentication over HTTP and in the WebSocket `connection_init`."""

import asyncio
import json
import logging
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

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
from graphql_schema.shared_data import SharedData
from models.compose import Tracker
from models.errors import storage_failure
from models.operator import Operator
from server.bus import DELIVERY_TOPIC, ENGINE_TOPIC, EventBus
from server.gc_tuning import GcTuning
from server.http import auth_failures, json_input
from server.http.graphiql import graphiql_page
from server.http.graphql_auth import authenticate, bearer, needs_operator
from server.http.graphql_http import (
    GRAPHQL_RESPONSE,
    JSON,
    NO_QUERY,
    error_response,
    execute,
    is_request_error,
    negotiate,
    unless_disconnected,
)
from server.http.operator_sockets import OperatorCheckedHandler, OperatorSockets
from server.http.token_cache import TokenCache
from server.http.websocket_guard import websocket_origins
from server.import_progress import ImportProgress
from server.mta.base import Mta
from server.mta.proofs import ProofSender
from server.progress import ProgressHub
from server.settings import Settings

log = logging.getLogger(__name__)

# The WebSocket whose `connection_init` on_ws_connect is checking: strawberry calls get_context
# and then on_ws_connect in the connection's own task, and hands on_ws_connect only the context.
_websocket: ContextVar[WebSocket | None] = ContextVar("websocket", default=None)


# The tracking URLs' base when PUBLIC_URL is unset and `serve` did not fill it in.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class GraphQLApp(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = OperatorCheckedHandler  # revoked means revoked

    def __init__(self, settings: Settings, bus: EventBus, hub: ProgressHub, mta: Mta) -> None:
        options = SchemaOptions(
            production=settings.production,
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_query_aliases,
            max_tokens=settings.max_query_tokens,
            max_cost=settings.max_query_cost,
            result_cache_size=settings.result_cache_size,
            result_cache_bytes=settings.result_cache_max_bytes,
        )
        schema = build_schema(options)
        self.imports_schema = schema  # the CSV upload reads rows as ProfileInput
        super().__init__(
            schema,
            graphql_ide="graphiql",  # rendered by render_graphql_ide: our offline page
            allow_queries_via_get=True,  # queries only: a mutation over GET is a 405
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
            allowed_origins=websocket_origins(settings.allowed_origins),
        )
        self.settings, self.bus, self.hub = settings, bus, hub
        self.imports = ImportProgress(bus)
        # previewDelivery's and sendProof's tracking URLs, and sendProof's relay
        self.tracker = Tracker(settings.public_url or DEFAULT_PUBLIC_URL, settings.tracking_key)
        self.relay_proof = ProofSender(mta)
        self.tokens = TokenCache(settings.token_cache_seconds)
        self.sockets = OperatorSockets(settings.token_cache_seconds or 1.0)
        # off unless the app owns its process (`serve`): server/app.py starts it
        self.gc_tuning = GcTuning()

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL for browsers (Accept: text/html) outside production (404 in production).
        Any other GET without a query (curl's Accept: */*) is told how to send one: a 400 with
        a GraphQL error, not a bare 404."""
        if "text/html" not in request.headers.get("accept", ""):
            raise HTTPException(400, NO_QUERY)
        if self.settings.production:
            return PlainTextResponse("Not Found", status_code=404)
        return graphiql_page(self.settings, request)

    # ---- GraphQL over HTTP: media types and status codes (server/http/graphql_http.py) ----

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The operator first, before anything is parsed (server/http/graphql_auth.py); then
        the request, cancelled if the client goes away meanwhile (a mutation, once it runs,
        is left to finish)."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self._answer(request)
        except Exception as error:
            # The database away (a restart) or full before GraphQL ran (the token lookup): a
            # 503 that says so, not a bare 500. Inside GraphQL, graphql_schema/errors.py does it.
            storage = storage_failure(error)
            if storage is None:
                raise
            log.error("database failure before GraphQL ran: %s (%s)", storage, error)
            response = error_response(
                503,
                storage,
                negotiate(request.headers.get("accept")),
                {"Retry-After": "1"},
                {"code": "INTERNAL_SERVER_ERROR", "reason": "STORAGE"},
            )
        if response is not None:
            await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response | None:
        """None when the client went away before the answer was ready."""
        if needs_operator(request):
            operator = await authenticate(request, self.tokens)
            if not isinstance(operator, Operator):
                return operator
            request.state.operator = operator
        return await unless_disconnected(request, lambda: self._respond(request))

    async def _respond(self, request: Request) -> Response:
        """strawberry refuses a bad HTTP request in plain text; here it is a GraphQL response in
        the negotiated media type, with a contract code (and `Allow` on a 405)."""
        try:
            return await self.run(request)
        except HTTPException as error:
            allow = "POST" if request.method == "GET" else "GET, POST"
            return error_response(
                error.status_code,
                error.reason,
                negotiate(request.headers.get("accept")),
                {"Allow": allow} if error.status_code == 405 else None,
            )

    def decode_json(self, data: str | bytes) -> object:
        """Bodies, GET parameters and WebSocket messages (server/http/json_input.py); every
        string in them may reach the database, so NUL is refused too."""
        return json_input.loads(data, storable=True)

    def parse_json(self, data: str | bytes) -> Any:
        """A 400 that says what is wrong with the JSON (strawberry's says only that it is)."""
        try:
            return self.decode_json(data)
        except json_input.InvalidJson as error:
            raise HTTPException(400, f"Unable to parse request body as JSON: {error}") from None

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

    def encode_json(self, data: object) -> str | bytes:
        """A result that several receivers share reuses its encoded data: a `next` message of a
        snapshot's (graphql_schema/execution.py), one encoding per snapshot instead of one per
        subscriber, and an HTTP answer the result cache kept (graphql_schema/results.py)."""
        if isinstance(data, dict) and len(data) == 1 and isinstance(data.get("data"), SharedData):
            return f'{{"data":{data["data"].json()}}}'
        if isinstance(data, dict) and data.get("type") == "next":
            payload = data["payload"]
            shared = payload.get("data")
            if isinstance(shared, SharedData) and len(payload) == 1:
                op_id = json.dumps(data["id"])
                return f'{{"id":{op_id},"type":"next","payload":{{"data":{shared.json()}}}}}'
        return super().encode_json(data)

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
            imports=self.imports,
            operator_changed=self._operator_changed,
            tracker=self.tracker,
            relay_proof=self.relay_proof,
        )

    async def _operator_changed(self, operator_id: int) -> None:
        """Revoked or rotated here: forget its cached token now, close its sockets as soon as
        this request (or socket operation) has answered."""
        self.tokens.forget(operator_id)
        self.sockets.close_after(operator_id, asyncio.current_task())

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        """Over HTTP, the operator __call__ authenticated (none for GraphiQL's page)."""
        context = self._context()
        if isinstance(request, Request):
            context.operator = getattr(request.state, "operator", None)
            context.token_given = context.operator is not None
            request.state.graphql_context = context  # for unless_disconnected
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
