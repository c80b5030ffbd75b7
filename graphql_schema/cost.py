"""The cost of an operation, known before it runs: how many objects it can make the server build.

Depth and alias limits do not bound work: `deliveries(first: 500) { edges { node { auditTrail(
first: 500) { ... } } } }` is three levels deep and asks for 250,000 events. The cost counts the
objects an operation may produce, multiplying nested lists, and the server refuses an operation
over MAX_QUERY_COST before anything runs (docs/limits.md):

- a field of an object type costs one object each time its parent is produced;
- a list of objects costs its size: the `first` (or `last`) argument, else the field's default
  page; the `edges` (and `nodes`) of a connection have the size of the connection's page; other
  lists have a known bound (LIST_BOUNDS; MAX_PAGE for one nobody wrote down);
- a connection (a paged field that is not a list) also costs the page of rows it reads, even when
  only `totalCount` is selected;
- scalars, enums and introspection (`__schema`, `__type`, `__typename`) cost nothing: scalars
  come with their object, and introspection is bounded by the schema.

A plan is compiled once per document (and kept with the cached validation, see caches.py); the
sizes given by variables are read from the request's variables when the plan is evaluated, so
`query($n: Int) { deliveries(first: $n) ... }` costs what `$n` asks for. The plan shares a
fragment's part between its spreads, so that compiling and evaluating stay linear in the
document even when fragments spread fragments.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_composite_type,
    is_leaf_type,
    value_from_ast_untyped,
)

from graphql_schema.pagination import DEFAULT_PAGE, MAX_PAGE
from graphql_schema.per_operation import PerOperation
from graphql_schema.profiles.types import HISTORY_MAX, HISTORY_PAGE
from models.enums import FailureReason
from models.kpi_history import MAX_POINTS
from models.profile import MAX_IMPORT

# (type, field) -> (default page, cap) for paged fields that differ from DEFAULT_PAGE/MAX_PAGE.
PAGES: dict[tuple[str, str], tuple[int, int]] = {
    ("Profile", "history"): (HISTORY_PAGE, HISTORY_MAX),
    ("Profile", "historyConnection"): (HISTORY_PAGE, HISTORY_MAX),
}
# Lists of objects without a page argument, and how long they can be: a number, or the length of
# an argument of the field that returns their parent (a mutation returns what it was given).
# Lists of scalars need no bound here (they cost nothing): Recurrence.nextOccurrences(count) is
# refused by its resolver above models/recurrence.py's MAX_NEXT_OCCURRENCES (50).
LIST_BOUNDS: dict[tuple[str, str], int | str] = {
    ("Delivery", "exclusions"): len(FailureReason),  # one entry per exclusion reason
    ("Delivery", "kpiHistory"): MAX_POINTS,  # models/kpi_history.py thins beyond it
    ("ImportProfilesPayload", "profiles"): "profiles",  # importProfiles(profiles: [...])
    ("Delivery", "proofs"): 50,  # the newest MAX_PROOFS_LISTED (graphql_schema/proofs/types.py)
    ("Proof", "recipients"): 20,  # MAX_PROOF_RECIPIENTS (models/proofs.py)
}
CONNECTION_LISTS = frozenset({"edges", "nodes"})
PAGE_ARGUMENTS = ("first", "last")


class Size:
    """How many items a list holds: a literal, a variable (with the operation's default), or the
    length of a list argument; with `either`, the larger of several (`first` and `last` both
    given). Values are clamped to [0, cap]: a larger `first` is refused by its resolver before
    it reads anything."""

    __slots__ = ("cap", "default", "either", "length", "literal", "variable")

    def __init__(
        self,
        cap: int,
        literal: Any = None,
        variable: str | None = None,
        default: int = 0,
        *,
        length: bool = False,
        either: tuple["Size", ...] = (),
    ) -> None:
        self.cap, self.literal, self.variable, self.default = cap, literal, variable, default
        self.length, self.either = length, either

    def value(self, variables: Mapping[str, Any]) -> int:
        if self.either:
            return max(size.value(variables) for size in self.either)
        found = self.literal if self.variable is None else variables.get(self.variable)
        if found is None:
            found = self.literal
        if self.length:
            count = len(found) if isinstance(found, list) else self.default
        elif isinstance(found, int) and not isinstance(found, bool):
            count = found
        elif isinstance(found, float) and found.is_integer():
            count = int(found)
        else:  # absent or null: the default page; of another type: refused when coerced
            count = self.default
        return max(0, min(count, self.cap))


@dataclass(eq=False)
class Node:
    """One field of the operation: `objects` per item of its parent (0 for a scalar, 1 for an
    object, 1 + page for a connection), `items` for a list (None: not a list)."""

    objects: int = 1
    rows: Size | None = None  # a connection reads a page of rows
    items: Size | None = None
    children: list["Node"] = field(default_factory=list)


class Plan:
    """The cost of a document's operations, as a function of the request's variables. Each
    operation is compiled when first asked for: a request runs one of them."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.compiler = _Compiler(schema, document)
        self.operations = PerOperation(document, self._compiled)

    def _compiled(self, definition: OperationDefinitionNode) -> tuple[list[Node], int | None]:
        """The operation's nodes, and its cost when no variable sizes anything."""
        self.compiler.variable_sizes = False
        roots = self.compiler.operation(definition)
        return roots, None if self.compiler.variable_sizes else _total(roots, {}, {})

    def cost(self, operation_name: str | None, variables: Mapping[str, Any] | None) -> int:
        known = self.operations.get(operation_name)
        if known is None:
            return 0  # no such operation: refused as such
        roots, fixed = known
        return fixed if fixed is not None else _total(roots, variables or {}, {})


def _total(nodes: list[Node], variables: Mapping[str, Any], memo: dict[int, int]) -> int:
    return sum(_unit(node, variables, memo) for node in nodes)


def _unit(node: Node, variables: Mapping[str, Any], memo: dict[int, int]) -> int:
    """Objects one item of the parent costs through this field (memoised: nodes are shared)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    items = 1 if node.items is None else node.items.value(variables)
    own = node.objects + (0 if node.rows is None else node.rows.value(variables))
    total = items * (own + _total(node.children, variables, memo))
    memo[id(node)] = total
    return total


def _variable_defaults(operation: OperationDefinitionNode) -> dict[str, Any]:
    defaults = {}
    for definition in operation.variable_definitions or ():
        if definition.default_value is not None:
            name = definition.variable.name.value
            defaults[name] = value_from_ast_untyped(definition.default_value)
    return defaults


class _Compiler:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.defaults: dict[str, Any] = {}
        self.variable_sizes = False
        self.memo: dict[tuple[str, int, int], list[Node]] = {}

    def operation(self, operation: OperationDefinitionNode) -> list[Node]:
        self.defaults = _variable_defaults(operation)
        self.memo = {}  # variable defaults differ between operations
        root = self.schema.get_root_type(operation.operation)
        return [] if root is None else self.selections(operation.selection_set, root, None, None)

    def size(self, value: Any, cap: int, default: int, *, length: bool = False) -> Size:
        if isinstance(value, VariableNode):
            self.variable_sizes = True
            name = value.name.value
            fallback = self.defaults.get(name)
            return Size(cap, fallback, name, default, length=length)
        if length:
            count = len(value.values) if isinstance(value, ListValueNode) else default
            return Size(cap, count, None, default)
        literal = int(value.value) if isinstance(value, IntValueNode) else None
        return Size(cap, literal, None, default)

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: Any,
        page: Size | None,
        parent_field: FieldNode | None,
    ) -> list[Node]:
        nodes: list[Node] = []
        if selection_set is None or not is_composite_type(parent):
            return nodes
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                node = self.field(selection, parent, page, parent_field)
                if node is not None:
                    nodes.append(node)
            elif isinstance(selection, InlineFragmentNode):
                inner: Any = parent
                if selection.type_condition is not None:
                    inner = self.schema.get_type(selection.type_condition.name.value) or parent
                nodes += self.selections(selection.selection_set, inner, page, parent_field)
            elif isinstance(selection, FragmentSpreadNode):
                nodes += self.spread(selection.name.value, page, parent_field)
        return nodes

    def spread(self, name: str, page: Size | None, parent_field: FieldNode | None) -> list[Node]:
        # what the fragment's lists may depend on: the page of a connection, the field's
        # arguments (a list as long as one of them)
        key = (name, id(page), id(parent_field))
        known = self.memo.get(key)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        self.memo[key] = []  # a cycle (refused by validation anyway) costs nothing more
        if fragment is None:
            return []
        on = self.schema.get_type(fragment.type_condition.name.value)
        nodes = self.selections(fragment.selection_set, on, page, parent_field)
        self.memo[key] = nodes
        return nodes

    def field(
        self, node: FieldNode, parent: Any, page: Size | None, parent_field: Any
    ) -> Node | None:
        """A field of an object or interface type (a union has no field but __typename)."""
        name = node.name.value
        definition = getattr(parent, "fields", {}).get(name)
        if name.startswith("__") or definition is None:
            return None
        kind = definition.type
        if isinstance(kind, GraphQLNonNull):
            kind = kind.of_type
        named = get_named_type(kind)
        if is_leaf_type(named):
            return None
        arguments = {a.name.value: a.value for a in node.arguments or ()}
        own_page = None
        if any(a in definition.args for a in PAGE_ARGUMENTS):
            default, cap = PAGES.get((parent.name, name), (DEFAULT_PAGE, MAX_PAGE))
            given = [a for a in PAGE_ARGUMENTS if a in arguments]
            sizes = [self.size(arguments[a], cap, default) for a in given]
            if len(sizes) == 1:
                own_page = sizes[0]
            else:  # none given: the default page; both: the larger
                own_page = Size(cap, None, None, default, either=tuple(sizes))
        result = Node()
        if isinstance(kind, GraphQLList):
            if own_page is not None:
                result.items = own_page
            elif page is not None and name in CONNECTION_LISTS:
                result.items = page
            else:
                result.items = self.bound(parent.name, name, parent_field)
        elif own_page is not None:
            result.rows = own_page
        children_page = own_page if not isinstance(kind, GraphQLList) else None
        result.children = self.selections(node.selection_set, named, children_page, node)
        return result

    def bound(self, type_name: str, name: str, parent_field: FieldNode | None) -> Size:
        bound = LIST_BOUNDS.get((type_name, name), MAX_PAGE)
        if isinstance(bound, int):
            return Size(bound, bound, None, bound)
        given = (parent_field.arguments or ()) if parent_field is not None else ()
        arguments = {a.name.value: a.value for a in given}
        return self.size(arguments.get(bound), MAX_IMPORT, 0, length=True)


def plan_for(schema: GraphQLSchema, document: DocumentNode) -> Plan:
    return Plan(schema, document)


def cost_error(cost: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"query cost {cost} exceeds the limit of {limit}: ask for smaller pages"
        " (first/last) or fewer nested lists",
        extensions={"code": "BAD_USER_INPUT", "cost": cost, "maxCost": limit},
    )
