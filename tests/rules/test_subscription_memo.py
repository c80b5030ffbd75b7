"""A long-lived subscription must not keep memory per event (graphql-core 3.3 memoises
sub-field collection in a dict that all events of a subscription share: bench/RESULTS.md)."""

from typing import Any

from graphql import build_schema, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_schema.execution import Executor
from graphql_schema.schema import schema as server_schema

SDL = """
type Kpis { sent: Int failed: Int }
type Progress { status: String kpis: Kpis }
type Query { dummy: String }
type Subscription { progress: Progress }
"""
DOCUMENT = parse("subscription { progress { status kpis { sent failed } } }")


def memo_after(events: int, context_class: Any) -> int:
    executor = context_class.build(build_schema(SDL), DOCUMENT)
    for i in range(events):
        payload = {"progress": {"status": "IN_PROGRESS", "kpis": {"sent": i, "failed": 0}}}
        result = executor.build_per_event_executor(payload).execute_operation(False)
        assert result.errors is None and result.data["progress"]["kpis"]["sent"] == i
    return len(executor._relevant_sub_fields)


def test_events_of_a_subscription_leave_no_memo_behind() -> None:
    assert memo_after(200, Executor) == 0
    # What it guards against: strawberry's own context keeps an entry per event and object.
    assert memo_after(200, StrawberryGraphQLCoreExecutionContext) >= 200


def test_the_server_schema_executes_with_the_per_event_memo() -> None:
    # (a subclass of it per schema, holding the schema's result cache)
    assert issubclass(server_schema.execution_context_class, Executor)
