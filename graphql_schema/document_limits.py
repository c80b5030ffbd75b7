"""Limits on a document's shape that keep validating it cheap, whatever it holds.

graphql-core checks that fields sharing a response name can be merged by comparing them in pairs
(OverlappingFieldsCanBeMergedRule): `{ deliveries { ... } }` repeated 480 times (4,802 tokens,
within the token limit) cost 1.5 s of CPU before graphql-core's own budget of 500,000
comparisons stopped it. Two bounds, both before that rule runs out of control:

- RepeatedFields, a validation rule that looks at the whole document when validation starts,
  in one linear pass, and refuses a selection set that selects one response name more than
  MAX_FIELD_REPEATS times (inline fragments and the fragments spread into it included);
- a smaller budget for graphql-core's pairwise comparisons and fragment work, for what stays
  quadratic within that bound (the same names repeated at every level of nesting): a few
  milliseconds of work, where a real query needs none (the dashboard's and GraphiQL's
  introspection spend 0 of it).

Either refusal is a validation error, BAD_USER_INPUT, cached with the validation like any other.
"""

from collections import Counter
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.language import BREAK
from graphql.validation import validation_context
from graphql.validation.rules import overlapping_fields_can_be_merged
from graphql.validation.validate import ValidationAbortedError

MAX_FIELD_REPEATS = 20
# graphql-core's units: about 7 µs each here (its defaults: 500,000 and 50,000).
OVERLAP_BUDGET = 2_000
FRAGMENT_WORK_BUDGET = 5_000
TOO_COMPLEX = (
    "the document is too costly to validate: it repeats the same fields or fragments too often"
)

overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = OVERLAP_BUDGET
validation_context.MAX_FRAGMENT_WORK = FRAGMENT_WORK_BUDGET


class _Refused(ValidationAbortedError):
    """Stops the validation at once (graphql-core returns the errors found so far and this)."""


class _Names:
    """Response names selected by each selection set, fragments flattened (a fragment's names
    are counted once and reused wherever it is spread)."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[str, Counter[str]] = {}
        self.busy: set[str] = set()  # fragments being counted: a cycle stops here

    def of(
        self, selection_set: SelectionSetNode, names: Counter[str] | None = None
    ) -> Counter[str]:
        names = Counter() if names is None else names
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                self.of(selection.selection_set, names)
            elif isinstance(selection, FragmentSpreadNode):
                names.update(self.fragment(selection.name.value))
        return names

    def fragment(self, name: str) -> Counter[str]:
        known = self.memo.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.busy:  # unknown or a cycle: other rules say so
            return Counter()
        self.busy.add(name)
        names = self.memo[name] = self.of(fragment.selection_set)
        self.busy.discard(name)
        return names


def _field_selection_sets(document: DocumentNode) -> Iterator[SelectionSetNode]:
    """The selection sets of the operations, fragments and fields (not those of inline
    fragments: their fields are counted with the set that holds them)."""
    stack: list[SelectionSetNode] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        selection_set = stack.pop()
        yield selection_set
        inline = [selection_set]
        while inline:
            for selection in inline.pop().selections:
                if isinstance(selection, FieldNode) and selection.selection_set is not None:
                    stack.append(selection.selection_set)
                elif isinstance(selection, InlineFragmentNode):
                    inline.append(selection.selection_set)


def most_repeated(document: DocumentNode) -> tuple[str, int]:
    """The response name selected most often in one selection set, and how often."""
    names = _Names(document)
    worst = ("", 0)
    for selection_set in _field_selection_sets(document):
        for name, count in names.of(selection_set).items():
            if count > worst[1]:
                worst = (name, count)
    return worst


class RepeatedFields(ValidationRule):
    """Refuses a selection set that repeats a response name more than MAX_FIELD_REPEATS times,
    before the other rules compare those fields in pairs."""

    def enter_document(self, node: DocumentNode, *_args: Any) -> Any:
        name, count = most_repeated(node)
        if count > MAX_FIELD_REPEATS:
            raise _Refused(
                f"'{name}' is selected {count} times in one selection set;"
                f" at most {MAX_FIELD_REPEATS} fields may share a response name"
            )
        return BREAK  # nothing more to look at: the rule costs one pass


def explained(errors: list[GraphQLError]) -> list[GraphQLError]:
    """graphql-core's "Validation aborted." says nothing of why: say it."""
    return [GraphQLError(TOO_COMPLEX) if e.message == "Validation aborted." else e for e in errors]
