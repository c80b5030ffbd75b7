"""Validation with graphql-core's rules, in one walk that calls only the rules that look.

graphql-core's `validate` runs every rule over every node of the document: its ParallelVisitor
loops over all the rules (about 35 here) at each node, entering and leaving, even where only two
or three of them have anything to do with that kind of node; the variable rules walk each
operation a second time, with type information, to find its variables (even when it has none);
and its caches key on the syntax nodes themselves, whose hash walks the whole subtree every time
(about 0.3 ms for an operation of 1,000 tokens, six times per validation).

Here, with the same rules and the same errors:
- the walk calls, for each kind of node, only the rules that define a method for it;
- the variable usages are collected during that same walk (`_Usages`), and the three rules that
  ask for them (all variables defined, all used, used in allowed positions) ask once the walk is
  over (`_at_the_end`): the answers are those of graphql-core's own walk of each definition;
- the context's caches key on identity;
- each rule's methods for a kind of node are looked up once per rule class, not on each rule
  instance of each validation (most of a small document's validation);
- the walk itself (`_walk`) only calls: graphql-core's `visit` can edit the tree, and keeps
  the machinery for it at every node.

For the 30-alias, 1,000-token document of bench/valid_documents.py: 17 ms with graphql-core's
`validate`, 5.4 ms here; `{ me { name } }`: 0.44 ms, 0.22 here (bench/RESULTS.md, "The
costliest valid documents").
"""

import inspect
from collections.abc import Callable, Collection
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    Node,
    OperationDefinitionNode,
    TypeInfo,
    ValidationContext,
    VariableNode,
    Visitor,
)
from graphql.language import BREAK, SKIP
from graphql.language.visitor import EnterLeaveVisitor
from graphql.validation import (
    NoUndefinedVariablesRule,
    NoUnusedVariablesRule,
    VariablesInAllowedPositionRule,
)
from graphql.validation.validate import (
    FragmentNestingVisitor,
    ValidationAbortedError,
    query_document_keys_to_validate,
)
from graphql.validation.validation_context import VariableUsage

MAX_ERRORS = 100  # graphql-core's default

Handler = Callable[..., Any]


class _ById(dict[int, tuple[Any, Any]]):
    """The part of a dict the context's caches use, keyed on the node's identity (each entry
    holds its node, so that identity is not reused meanwhile)."""

    def get(self, key: Any, default: Any = None) -> Any:
        entry = dict.get(self, id(key))
        return default if entry is None else entry[1]

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, id(key), (key, value))


class _Context(ValidationContext):
    """graphql-core's context, with identity-keyed caches and the usages collected in the walk."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._fragment_spreads = _ById()  # type: ignore[assignment]
        self._variable_usages = _ById()  # type: ignore[assignment]
        self._recursive_variable_usages = _ById()  # type: ignore[assignment]


class _Usages(Visitor):
    """Collects each definition's variable usages as graphql-core's VariableUsageVisitor does,
    during the one walk: the context then answers from them without walking again."""

    def __init__(self, context: ValidationContext, type_info: TypeInfo) -> None:
        super().__init__()
        self.context, self.type_info = context, type_info
        self.usages: list[VariableUsage] = []
        self.fragment: FragmentDefinitionNode | None = None

    def enter_operation_definition(self, *_args: Any) -> None:
        self.usages, self.fragment = [], None

    def enter_fragment_definition(self, node: FragmentDefinitionNode, *_args: Any) -> None:
        self.usages, self.fragment = [], node

    def leave_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        self.context._variable_usages[node] = self.usages

    def leave_fragment_definition(self, node: FragmentDefinitionNode, *_args: Any) -> None:
        self.context._variable_usages[node] = self.usages

    def enter_variable_definition(self, *_args: Any) -> Any:
        return SKIP

    def enter_variable(self, node: VariableNode, *_args: Any) -> None:
        type_info, fragment, definition = self.type_info, self.fragment, None
        if fragment is not None:
            signature = type_info.get_fragment_signature_by_name()(fragment.name.value)
            if signature:
                definition = signature.variable_definitions.get(node.name.value)
        self.usages.append(
            VariableUsage(
                node,
                type_info.get_input_type(),
                type_info.get_parent_input_type(),
                type_info.get_default_value(),
                definition,
            )
        )


def _at_the_end(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """The rule, its look at each operation and fragment made once the walk is over, when the
    usages of every definition (fragments spread before they are defined included) are known."""

    def __init__(self: Any, context: ValidationContext) -> None:
        rule.__init__(self, context)
        self.definitions = []

    def enter_definition(self: Any, node: Node, *_args: Any) -> None:
        self.definitions.append(node)

    def leave_document(self: Any, *_args: Any) -> None:
        for node in self.definitions:
            for method in (f"enter_{node.kind}", f"leave_{node.kind}"):
                handler = getattr(rule, method, None)
                if handler is not None:
                    handler(self, node)

    methods: dict[str, Any] = {
        "__init__": __init__,
        "enter_operation_definition": enter_definition,
        "leave_operation_definition": None,
        "leave_document": leave_document,
        "__doc__": rule.__doc__,
    }
    if hasattr(rule, "enter_fragment_definition"):
        methods["enter_fragment_definition"] = enter_definition
    return type(rule.__name__, (rule,), methods)


# graphql-core's variable rules, and the same rules made to look at the end.
_DEFERRED: dict[type[ASTValidationRule], type[ASTValidationRule]] = {
    rule: _at_the_end(rule)
    for rule in (NoUndefinedVariablesRule, NoUnusedVariablesRule, VariablesInAllowedPositionRule)
}


# A rule's methods for a kind of node, by its class: graphql-core looks them up on each rule
# instance (two or four getattr a kind), which for a small document was most of its validation.
_UNBOUND: dict[tuple[type, str], tuple[Handler | None, Handler | None]] = {}


def _methods(visitor: Visitor, kind: str) -> EnterLeaveVisitor:
    """What `visitor.get_enter_leave_for_kind(kind)` answers, found once per class."""
    cls = type(visitor)
    if cls.get_enter_leave_for_kind is not Visitor.get_enter_leave_for_kind:
        return visitor.get_enter_leave_for_kind(kind)  # a visitor with its own look-up
    unbound = _UNBOUND.get((cls, kind))
    if unbound is None:
        enter = _static(cls, f"enter_{kind}") or _static(cls, "enter")
        leave = _static(cls, f"leave_{kind}") or _static(cls, "leave")
        unbound = _UNBOUND[(cls, kind)] = (enter, leave)
    enter, leave = unbound
    return EnterLeaveVisitor(
        None if enter is None else enter.__get__(visitor, cls),
        None if leave is None else leave.__get__(visitor, cls),
    )


def _static(cls: type, name: str) -> Any:
    """The attribute as the class defines it (a function, a staticmethod ...), bound later as
    `getattr` on the instance would bind it: some of graphql-core's rules use staticmethods."""
    return inspect.getattr_static(cls, name, None)


class _Parallel(Visitor):
    """graphql-core's ParallelVisitor (same skip and break rules), but each kind of node calls
    only the visitors with a method for it."""

    def __init__(self, visitors: list[Visitor]) -> None:
        super().__init__()
        self.visitors = visitors
        self.skipping: list[Any] = [None] * len(visitors)
        # the visitors that skip a subtree, by its node's identity: back when the node is left
        self.skips: dict[int, list[int]] = {}

    def get_enter_leave_for_kind(self, kind: str) -> EnterLeaveVisitor:
        known = self.enter_leave_map.get(kind)
        if known is None:
            known = self.enter_leave_map[kind] = self._for_kind(kind)
        return known

    def _for_kind(self, kind: str) -> EnterLeaveVisitor:
        pairs = [(i, _methods(v, kind)) for i, v in enumerate(self.visitors)]
        entering = tuple((i, p.enter) for i, p in pairs if p.enter)
        leaving = tuple((i, p.leave) for i, p in pairs if p.leave)
        skipping, skips = self.skipping, self.skips

        def enter(node: Node, *args: Any) -> Any:
            for i, fn in entering:
                if skipping[i] is None:
                    result: Any = fn(node, *args)
                    if result is None:
                        continue
                    if result is SKIP or result is False:
                        skipping[i] = node
                        skips.setdefault(id(node), []).append(i)
                    elif result is BREAK or result is True:
                        skipping[i] = BREAK
                    else:
                        return result
            return None

        def leave(node: Node, *args: Any) -> Any:
            for i, fn in leaving:
                if skipping[i] is None:
                    result: Any = fn(node, *args)
                    if result is None:
                        continue
                    if result is BREAK or result is True:
                        skipping[i] = BREAK
                    elif result is not SKIP and result is not False:
                        return result
            if skips:
                for i in skips.pop(id(node), ()):
                    skipping[i] = None
            return None

        # Every kind needs a leave while some visitor skips: it is where the skip ends.
        return EnterLeaveVisitor(enter if entering else None, leave)


def _walk(document: DocumentNode, type_info: TypeInfo, visitor: Visitor) -> None:
    """graphql-core's `visit(document, TypeInfoVisitor(type_info, visitor), keys)`, recursive and
    for validation only: the same nodes in the same order, each handler given the same key,
    parent, path and ancestors (KnownDirectives and KnownTypeNames read the ancestors).

    graphql-core's `visit` is general: it can edit the tree, so it keeps a stack of edits and
    looks up each node's handlers and TypeInfo's methods by name; that was a third of a large
    document's validation. Here nothing edits (a rule answers None, SKIP or BREAK, which
    `_Parallel` keeps per rule), so the walk only calls, and what each kind of node calls is
    worked out once.
    """
    path: list[Any] = []
    ancestors: list[Any] = []
    by_kind: dict[str, tuple[Any, ...]] = {}

    def calls(kind: str) -> tuple[Any, ...]:
        methods = visitor.get_enter_leave_for_kind(kind)
        return (
            getattr(type_info, f"enter_{kind}", None),
            methods.enter,
            query_document_keys_to_validate.get(kind, ()),
            methods.leave,
            getattr(type_info, f"leave_{kind}", None),
        )

    def walk(node: Node, key: Any, parent: Any) -> None:
        kind = node.kind
        known = by_kind.get(kind)
        if known is None:
            known = by_kind[kind] = calls(kind)
        type_enter, enter, keys, leave, type_leave = known
        if type_enter is not None:
            type_enter(node)
        if enter is not None:
            enter(node, key, parent, path, ancestors)
        if parent is not None:
            ancestors.append(parent)
        for name in keys:
            child = getattr(node, name, None)
            if child is None:
                continue
            path.append(name)
            if type(child) is tuple:
                if child:
                    ancestors.append(node)
                    for index, item in enumerate(child):
                        if item is not None:
                            path.append(index)
                            walk(item, index, child)
                            path.pop()
                    ancestors.pop()
            else:
                walk(child, name, node)
            path.pop()
        if parent is not None:
            ancestors.pop()
        if leave is not None:
            leave(node, key, parent, path, ancestors)
        if type_leave is not None:
            type_leave()

    walk(document, None, None)


def validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: Collection[type[ASTValidationRule]],
    max_errors: int = MAX_ERRORS,
) -> list[GraphQLError]:
    """graphql-core's `validate` (its errors, its limits, its abort) in the walk above."""
    errors: list[GraphQLError] = []
    type_info = TypeInfo(schema)

    def on_error(error: GraphQLError) -> None:
        if len(errors) >= max_errors:
            raise ValidationAbortedError(
                "Too many validation errors, error limit reached. Validation aborted."
            )
        errors.append(error)

    context = _Context(schema, document, type_info, on_error, False, True)
    visitors: list[Visitor] = [_Usages(context, type_info)]
    visitors += [_DEFERRED.get(rule, rule)(context) for rule in rules]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if fragments:
        visitors.insert(0, FragmentNestingVisitor(fragments))
    try:
        _walk(document, type_info, _Parallel(visitors))
    except ValidationAbortedError as error:
        error.__context__ = None
        errors.append(error.with_traceback(None))
    except RecursionError:
        errors.append(ValidationAbortedError("Validation aborted."))
    return errors
