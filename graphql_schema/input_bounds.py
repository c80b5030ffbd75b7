"""How many values a list in a request's variables may hold, checked before graphql-core
coerces them.

graphql-core coerces every value of the variables before any resolver runs, about 3 to 4 µs a
value: `deliveries(statuses: $s)` holds at most 10 statuses, but a variable holding 100,000 of
them (800 KB, any operator's token) kept the event loop 0.37 s before the resolver refused it.
Literal lists need no check: the token limit bounds them.

Each list argument and list input field has its bound here, with the message its resolver gives
(tests/rules/test_input_bounds.py checks that every list input of the schema has one). A
variable used where a list is expected is bounded by the smallest bound of the places it is
used in; a variable of an input object type has the bounds of its type's list fields. A list
over its bound is refused before anything runs, with BAD_USER_INPUT and the resolver's words.

The bounds are what an operator with the right role may send: 100,000 `profileIds` for a
preparer (0.26 s of coercion). An operator without the role a root field needs would only be
refused by it, after the coercion: a list over ROLE_LESS_VALUES used only under root fields the
operator may not run is refused first, FORBIDDEN, with the words the field's own check uses.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    type_from_ast,
)

from graphql_schema.per_operation import PerOperation
from graphql_schema.permissions import missing_role, role_needed
from models.enums import DeliveryStatus, Role, SendingLogStatus
from models.lifecycle import MAX_AUDIENCE_IDS
from models.operator import Operator
from models.profile import MAX_IMPORT
from models.proofs import MAX_PROOF_RECIPIENTS

ROLE_LESS_VALUES = 1_000  # what a list may hold where the operator may not use it


@dataclass(frozen=True)
class Bound:
    """At most `values` values; `message` is what the resolver says over it ({cap}, {got})."""

    values: int
    message: str


STATUSES = "'statuses' holds at most {cap} values (got {got})"
PROOF = "a proof goes to at most {cap} recipients (got {got})"

# (type, field, argument) -> bound, for arguments that are lists
ARGUMENT_LISTS: dict[tuple[str, str, str], Bound] = {
    ("Query", "deliveries", "statuses"): Bound(len(DeliveryStatus), STATUSES),
    ("Query", "sendingLogs", "statuses"): Bound(len(SendingLogStatus), STATUSES),
    ("Delivery", "sendingLogs", "statuses"): Bound(len(SendingLogStatus), STATUSES),
    ("Mutation", "importProfiles", "profiles"): Bound(
        MAX_IMPORT, "at most {cap} profiles per import (got {got})"
    ),
    ("Mutation", "createOperator", "roles"): Bound(
        len(Role), "at most {cap} roles, one of each (got {got})"
    ),
}
# (input type, field) -> bound, for input fields that are lists
INPUT_FIELD_LISTS: dict[tuple[str, str], Bound] = {
    ("AudienceInput", "profileIds"): Bound(
        MAX_AUDIENCE_IDS, "at most {cap} profileIds (got {got}); use allProfiles for more"
    ),
    ("SendProofInput", "addresses"): Bound(MAX_PROOF_RECIPIENTS, PROOF),
    ("SendProofInput", "profileIds"): Bound(MAX_PROOF_RECIPIENTS, PROOF),
}


def _unwrapped(kind: Any) -> Any:
    return kind.of_type if isinstance(kind, GraphQLNonNull) else kind


class InputBounds:
    """The bounds of a document's variables, per operation, worked out once per document (and
    kept with its validation, see caches.py); checked against each request's variables."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operations = PerOperation(document, self._declared)
        self.root: str | None = None  # while compiling: the root field being walked
        self.root_fields: dict[str, Any] = {}  # graphql-core's field of each root field's name
        self.uses: dict[str, set[str | None]] = {}

    def error(
        self,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        operator: Operator | None = None,
    ) -> GraphQLError | None:
        """The first list over its bound in the variables, as the request's error (or, with
        `operator`, over ROLE_LESS_VALUES where the operator may not use it)."""
        if not variables:
            return None
        declared = self.operations.get(operation_name)
        if declared is None:
            return None  # no such operation: refused as such
        for name, (kind, bound, roots) in declared.items():
            if name in variables:
                message = _over(variables[name], kind, bound)
                if message is not None:
                    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})
                if operator is not None and roots:
                    refusal = _refusal(operator, roots)
                    if refusal is not None and _over(variables[name], kind, bound, _ROLE_LESS):
                        return GraphQLError(refusal, extensions={"code": "FORBIDDEN"})
        return None

    def _declared(self, operation: OperationDefinitionNode) -> dict[str, "Declared"]:
        """Each variable's declared type, for a list the bound of where it is used, and the
        root fields (graphql-core's) it is used under."""
        bounds: dict[str, Bound] = {}
        self.uses = {}
        root = self.schema.get_root_type(operation.operation)
        if root is not None:
            self._selections(operation.selection_set, root, bounds, set())
        declared = {}
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            kind = type_from_ast(self.schema, definition.type)
            roots = tuple((r, self.root_fields[r]) for r in self.uses.get(name, ()) if r)
            declared[name] = (kind, bounds.get(name), roots)
        return declared

    def _selections(
        self, selection_set: SelectionSetNode | None, parent: Any, bounds: dict[str, Bound],
        seen: set[tuple[str, str | None]],
    ) -> None:  # fmt: skip
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                definition = getattr(parent, "fields", {}).get(selection.name.value)
                if definition is None:
                    continue
                top = self.root is None
                if top:
                    self.root = selection.name.value
                    self.root_fields[self.root] = definition
                for argument in selection.arguments or ():
                    spec = definition.args.get(argument.name.value)
                    if spec is not None:
                        key = (parent.name, selection.name.value, argument.name.value)
                        self._value(argument.value, spec.type, ARGUMENT_LISTS.get(key), bounds)
                inner = get_named_type(definition.type)
                self._selections(selection.selection_set, inner, bounds, seen)
                if top:
                    self.root = None
            elif isinstance(selection, InlineFragmentNode):
                on = parent
                if selection.type_condition is not None:
                    on = self.schema.get_type(selection.type_condition.name.value) or parent
                self._selections(selection.selection_set, on, bounds, seen)
            elif isinstance(selection, FragmentSpreadNode):
                # once per root field: its variables are used under each root that spreads it
                visit = (selection.name.value, self.root)
                if visit in seen:
                    continue
                seen.add(visit)
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    on = self.schema.get_type(fragment.type_condition.name.value)
                    self._selections(fragment.selection_set, on, bounds, seen)

    def _value(
        self, value: ValueNode, kind: GraphQLInputType, bound: Bound | None,
        bounds: dict[str, Bound],
    ) -> None:  # fmt: skip
        """Where the variables in a literal argument are used: the bound of a list place."""
        kind = _unwrapped(kind)
        if isinstance(value, VariableNode):
            self.uses.setdefault(value.name.value, set()).add(self.root)
            if isinstance(kind, GraphQLList) and bound is not None:
                name = value.name.value
                known = bounds.get(name)
                if known is None or bound.values < known.values:
                    bounds[name] = bound
        elif isinstance(value, ListValueNode) and isinstance(kind, GraphQLList):
            for item in value.values:
                self._value(item, kind.of_type, None, bounds)
        elif isinstance(value, ObjectValueNode) and isinstance(kind, GraphQLInputObjectType):
            for field in value.fields:
                spec = kind.fields.get(field.name.value)
                if spec is not None:
                    key = (kind.name, field.name.value)
                    self._value(field.value, spec.type, INPUT_FIELD_LISTS.get(key), bounds)


Declared = tuple[Any, Bound | None, tuple[Any, ...]]
_ROLE_LESS = Bound(ROLE_LESS_VALUES, "over {cap}")


def _refusal(operator: Operator, roots: tuple[Any, ...]) -> str | None:
    """What the first root field says to this operator, when it may run none of them."""
    refusals = [missing_role(operator, role_needed(field), name) for name, field in roots]
    return None if None in refusals else refusals[0]


def _over(value: Any, kind: Any, bound: Bound | None, cap: Bound | None = None) -> str | None:
    """Why `value`, of type `kind` where `bound` applies, holds too many values (None: it
    does not); with `cap`, no list of it may hold more. Only what is within bounds is looked
    into, so this costs at most the bounds."""
    kind = _unwrapped(kind)
    if isinstance(kind, GraphQLList):
        if not isinstance(value, list):
            return _over(value, kind.of_type, None, cap)  # one value, coerced as a list of one
        if cap is not None and (bound is None or cap.values < bound.values):
            bound = cap
        if bound is not None and len(value) > bound.values:
            return bound.message.format(cap=bound.values, got=len(value))
        item = _unwrapped(kind.of_type)
        if _holds_lists(item):
            for each in value:
                message = _over(each, item, None, cap)
                if message is not None:
                    return message
        return None
    if isinstance(kind, GraphQLInputObjectType) and isinstance(value, dict):
        for name, spec in kind.fields.items():
            if name in value:
                own = INPUT_FIELD_LISTS.get((kind.name, name))
                message = _over(value[name], spec.type, own, cap)
                if message is not None:
                    return message
    return None


@cache
def _holds_lists(kind: Any) -> bool:
    """Whether a value of this type can hold a list (so its items are worth looking into)."""
    if isinstance(kind, GraphQLList):
        return True
    if isinstance(kind, GraphQLInputObjectType):
        return any(
            _holds_lists(_unwrapped(f.type)) for f in kind.fields.values() if f.type is not kind
        )
    return False


def bounds_for(schema: GraphQLSchema, document: DocumentNode) -> InputBounds:
    return InputBounds(schema, document)
