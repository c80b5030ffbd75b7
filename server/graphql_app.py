"""The strawberry ASGI app: authentication over HTTP and in the WebSocket `connection_init`."""

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from graphql_schema.context import Context
from graphql_schema.schema import SchemaOptions, build_schema
from models.operator import operator_for_token
from server.bus import DELIVERY_TOPIC, ENGINE_TOPIC, EventBus
from server.http.graphiql import graphiql_page
from server.progress import ProgressHub
from server.settings import Settings


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
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self.settings, self.bus, self.hub = settings, bus, hub

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL for browsers (Accept: text/html); other GETs answer 404 as they always did."""
        if "text/html" not in request.headers.get("accept", ""):
            return PlainTextResponse("Not Found", status_code=404)
        return graphiql_page(self.settings, request)

    def _context(self) -> Context:
        bus = self.bus

        async def changed(delivery_id: int) -> None:
            await bus.publish(DELIVERY_TOPIC, {"id": delivery_id})

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
        context = self._context()
        if isinstance(request, Request):
            header = request.headers.get("authorization")
            token = bearer(header)
            context.token_given = header is not None
            context.operator = await operator_for_token(token) if token else None
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        value = params.get("Authorization", params.get("authorization"))
        token = bearer(value)
        operator = await operator_for_token(token) if token else None
        if operator is None:
            reason = "bad bearer token" if token else "missing Authorization in connection_init"
            raise ConnectionRejectionError({"message": reason, "code": "UNAUTHENTICATED"})
        context.operator, context.token_given = operator, True
        return None
