"""What a document's operations need worked out, each when first asked for: a request runs one
of them (the one `operationName` names, or the only one), and a cached document keeps what was
worked out for the next request (graphql_schema/caches.py)."""

from collections.abc import Callable
from typing import Generic, TypeVar

from graphql import DocumentNode, OperationDefinitionNode

T = TypeVar("T")


class PerOperation(Generic[T]):
    def __init__(self, document: DocumentNode, work: Callable[[OperationDefinitionNode], T]):
        self.definitions = {
            (d.name.value if d.name else None): d
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        }
        self.work = work
        self.done: dict[str | None, T] = {}

    def get(self, operation_name: str | None) -> T | None:
        """What `work` gave for that operation (None: no such operation, refused as such)."""
        if operation_name is None:
            operation_name = next(iter(self.definitions), None)
        if operation_name in self.done:
            return self.done[operation_name]
        definition = self.definitions.get(operation_name)
        if definition is None:
            return None
        done = self.done[operation_name] = self.work(definition)
        return done
