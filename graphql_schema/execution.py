"""How the server executes operations: loaders per execution, one execution per snapshot.

- Each operation, and each event of a subscription, runs with a copy of the request context that
  has its own data loaders (graphql_schema/loaders.py): a WebSocket connection shares one context
  across all its operations, and loaders shared that long would serve stale rows.
- A subscription event whose payload offers `shared_results` (a `deploymentProgress` snapshot)
  is executed once per distinct selection for all its subscribers: the operation, its variables
  and the operator's audience (Context.audience: what decides what a resolver answers) form the
  key; the first subscriber executes, the others take its result. Executing the dashboard's
  selection costs about 0.3 ms, so a thousand subscribers cost 0.3 s a change without this.
- graphql-core 3.3 shares one memo of sub-field collection between all the events of a
  subscription, keyed by the id of lists made anew for every event: a long-lived subscription
  kept about 4.8 KB per event (bench/RESULTS.md). Each event gets a memo of its own.
"""

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

from graphql import FieldNode, OperationDefinitionNode, OperationType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_schema.context import Context
from graphql_schema.results import ResultCache, key_of
from graphql_schema.shared_data import SharedData


class Executor(StrawberryGraphQLCoreExecutionContext):
    # The schema's result cache (graphql_schema/results.py), set on a subclass per schema.
    results: ResultCache | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._share_key: tuple[Any, ...] | None = None
        if isinstance(self.context_value, Context):
            self.context_value = self.context_value.for_operation()

    def execute_operation(self, serially: bool | None = None) -> Any:
        """Queries go through the result cache; mutations and subscriptions never do."""
        results, context = self.results, self.context_value
        if (
            results is None
            or self.operation.operation is not OperationType.QUERY
            or not isinstance(context, Context)
            or _from_the_request(self.operation)
        ):
            return super().execute_operation(serially)
        key = key_of(self, context)
        return results.serve(self, key, lambda: super(Executor, self).execute_operation(serially))

    def build_per_event_executor(self, payload: Any) -> Any:
        shared = getattr(payload, "shared_results", None)
        if isinstance(shared, dict):
            return _SharedEvent(self, payload, shared)
        return self.event_executor(payload)

    def event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        if isinstance(self.context_value, Context):
            executor.context_value = self.context_value.for_operation()
        return executor

    def share_key(self) -> tuple[Any, ...]:
        """What two subscribers must have in common to share an event's result."""
        if self._share_key is None:
            variables = json.dumps(self.variable_values.coerced, sort_keys=True, default=str)
            context = self.context_value
            audience = context.audience() if isinstance(context, Context) else id(context)
            self._share_key = (id(self.operation), variables, audience)
        return self._share_key


# Root fields answered from the request itself: reading the database's version to serve them
# from the result cache would cost more than answering them (about twice, for `me`).
REQUEST_FIELDS = frozenset({"me", "__typename"})


def _from_the_request(operation: OperationDefinitionNode) -> bool:
    return all(
        isinstance(s, FieldNode) and s.name.value in REQUEST_FIELDS
        for s in operation.selection_set.selections
    )


def _shareable(result: Any) -> Any:
    if result.data is not None:
        result.data = SharedData(result.data)
    return result


async def _shareable_later(result: Awaitable[Any]) -> Any:
    return _shareable(await result)


class _SharedEvent:
    """Stands for a per-event executor: executes once per key, or hands the result over."""

    __slots__ = ("executor", "payload", "shared")

    def __init__(self, executor: Executor, payload: Any, shared: dict[Any, Any]) -> None:
        self.executor, self.payload, self.shared = executor, payload, shared

    def execute_operation(self, serially: bool | None = None) -> Any:
        executor = self.executor
        key = executor.share_key()
        entry = self.shared.get(key)
        # The entry holds the operation node: its id in the key cannot be reused meanwhile.
        if entry is not None and entry[0] is executor.operation:
            result = entry[1]
            if not isinstance(result, asyncio.Future):
                return result
            if result.done() and not result.cancelled() and result.exception() is None:
                return result.result()
            return asyncio.shield(result)  # one subscriber leaving does not cancel the others
        result = executor.event_executor(self.payload).execute_operation(serially)
        if executor.is_awaitable(result):
            task = asyncio.ensure_future(_shareable_later(result))
            self.shared[key] = (executor.operation, task)
            return asyncio.shield(task)
        self.shared[key] = (executor.operation, _shareable(result))
        return result
