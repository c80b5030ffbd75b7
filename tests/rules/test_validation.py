"""graphql_schema/validation.py answers exactly as graphql-core's `validate` does, on the
server's schema with the server's rules: the same errors, at the same places, for documents
written to break each rule and for documents generated from the schema (valid ones, and the
same with a mistake put in). Only the order of the errors may differ: the variable rules
report once the walk is over."""

import graphql
import hypothesis_graphql
import pytest
from graphql.validation.validate import query_document_keys_to_validate as KEYS
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from graphql_schema.caches import STRAWBERRY_RULES
from graphql_schema.schema import SchemaOptions, build_schema, limit_rules
from graphql_schema.validation import _methods, _walk, validate

CORE: graphql.GraphQLSchema = build_schema()._schema  # type: ignore[attr-defined]
RULES = (*graphql.specified_rules, *limit_rules(SchemaOptions()), *STRAWBERRY_RULES)
SDL = graphql.print_schema(CORE)

# Each breaks at least one rule (several break many); the comment says which.
BROKEN = [
    "query Q($a: ID!) { delivery(id: $b) { id } }",  # undefined variable, unused one
    "query Q($a: String) { delivery(id: $a) { id } }",  # variable in a disallowed position
    "query Q($a: ID!, $a: ID!) { delivery(id: $a) { id } }",  # duplicate variable
    "query Q($a: Delivery) { me { name } }",  # output type as a variable's type
    "query Q { ...F } fragment F on Query { delivery(id: $a) { id } }",  # undefined, via fragment
    "query Q($x: ID!) { ...F } fragment F on Query { delivery(id: $x) { nope } }",  # unknown field
    "query Q($x: ID!) { me { name } } fragment F on Query { delivery(id: $x) { id } }",  # unused
    "query A { me { name } } query A { me { id } } { me { name } }",  # names, anonymous
    "{ delivery(id: 1) { id @skip(if: true) @skip(if: false) @nope } }",  # directives
    "fragment A on Query { ...B } fragment B on Query { ...A } { ...A }",  # cycle
    "{ ...Missing } fragment F on Nope { id }",  # unknown fragment, type, unused
    "{ a: delivery(id: 1) { id } a: delivery(id: 2) { id } }",  # cannot be merged
    "{ a: me { name } a: me { roles } b: me }",  # leaf without selection, merge
    "{ delivery { id } deliveries(first: 1, first: 2) { totalCount } }",  # arguments
    "{ delivery(id: 1, nope: 2) { id label(x: 1) status { a } } }",  # arguments, leafs
    "{ deliveries(statuses: [NOPE]) { totalCount } }",  # enum value
    "subscription { a: deploymentProgress(deliveryId: 1) { at } b: __typename }",  # one field
    "mutation { me { name } }",  # field on the wrong root
    "{ delivery(id: 1) { ... on Profile { id } } }",  # impossible spread
    "query Q($v: ID! = 1) { delivery(id: $v) { id } }",  # default on a non-null (allowed)
    "query Q($f: Boolean!) { delivery(id: 1) @include(if: $f) { id } }",  # fine
    "query Q($f: Boolean) { delivery(id: 1) { id @skip(if: $f) } }",  # nullable to non-null
    # introspection nested too deep
    "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }",  # noqa: E501
]


def errors(document: graphql.DocumentNode, validator: object) -> list[tuple[str, str]]:
    found = validator(CORE, document, RULES)  # type: ignore[operator]
    return sorted((e.message, str(e.locations)) for e in found)


@pytest.mark.parametrize("text", BROKEN)
def test_each_broken_document_gets_graphql_cores_errors(text: str) -> None:
    document = graphql.parse(text)
    assert errors(document, validate) == errors(document, graphql.validate)


def test_the_broken_documents_break_what_they_say() -> None:
    valid = [t for t in BROKEN if not graphql.validate(CORE, graphql.parse(t), RULES)]
    assert valid == [
        "query Q($v: ID! = 1) { delivery(id: $v) { id } }",
        "query Q($f: Boolean!) { delivery(id: 1) @include(if: $f) { id } }",
    ]


MISTAKES = [
    ("{", "{ nope "),  # an unknown field first in some selection
    ("(", "(nope: 1, "),  # an unknown argument
    ("$", "$undefined"),  # a variable renamed
    (")", ", nope: $nope)"),
]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    text=hypothesis_graphql.queries(SDL) | hypothesis_graphql.mutations(SDL),
    mistake=st.sampled_from([None, *MISTAKES]),
    which=st.integers(min_value=0, max_value=50),
)
def test_generated_documents_get_graphql_cores_errors(
    text: str, mistake: tuple[str, str] | None, which: int
) -> None:
    if mistake is not None:
        where = [i for i, c in enumerate(text) if c == mistake[0]]
        if where:
            at = where[which % len(where)]
            text = text[:at] + mistake[1] + text[at + 1 :]
    try:
        document = graphql.parse(text)
    except graphql.GraphQLError:
        return  # the mistake made it unparsable: nothing to validate
    expected = errors(document, graphql.validate)
    event("valid" if not expected else "invalid")
    assert errors(document, validate) == expected


def test_each_rule_is_called_through_the_same_methods_graphql_core_would_call() -> None:
    """The methods found once per rule class are those graphql-core finds on each instance,
    bound the same way (some rules' handlers are staticmethods)."""
    context = graphql.ValidationContext(
        CORE, graphql.parse("{ me { name } }"), graphql.TypeInfo(CORE), lambda _error: None
    )
    kinds = graphql.language.ast.QUERY_DOCUMENT_KEYS
    for rule in RULES:
        ours, theirs = rule(context), rule(context)
        for kind in kinds:
            found, expected = _methods(ours, kind), theirs.get_enter_leave_for_kind(kind)
            for mine, core in zip(found, expected, strict=True):
                assert (mine is None) == (core is None), (rule.__name__, kind)
                if core is not None:
                    assert getattr(mine, "__func__", mine) is getattr(core, "__func__", core)
                    assert getattr(mine, "__self__", None) in (None, ours)
                    assert (getattr(core, "__self__", None) is None) == (
                        getattr(mine, "__self__", None) is None
                    ), (rule.__name__, kind)


class Recorder(graphql.Visitor):
    """Writes down every call a validation rule would get: the node, its key, parent, path and
    ancestors, and what TypeInfo says there."""

    def __init__(self, type_info: graphql.TypeInfo) -> None:
        super().__init__()
        self.type_info, self.calls = type_info, list[tuple[object, ...]]()

    def record(self, event: str, node: graphql.Node, *args: object) -> None:
        key, parent, path, ancestors = args
        info = self.type_info
        state = (
            info.get_type(),
            info.get_parent_type(),
            info.get_input_type(),
            info.get_argument(),
        )
        self.calls.append(
            (
                event,
                id(node),
                key,
                id(parent),
                tuple(path),  # type: ignore[arg-type]
                tuple(map(id, ancestors)),
                tuple(map(str, state)),
            )  # type: ignore[call-overload]
        )

    def enter(self, node: graphql.Node, *args: object) -> None:
        self.record("enter", node, *args)

    def leave(self, node: graphql.Node, *args: object) -> None:
        self.record("leave", node, *args)


def walked(document: graphql.DocumentNode, walker: object) -> list[tuple[object, ...]]:
    type_info = graphql.TypeInfo(CORE)
    recorder = Recorder(type_info)
    walker(document, type_info, recorder)  # type: ignore[operator]
    assert recorder.calls
    return recorder.calls


def graphql_cores_walk(
    document: graphql.DocumentNode, type_info: graphql.TypeInfo, visitor: graphql.Visitor
) -> None:
    graphql.visit(document, graphql.TypeInfoVisitor(type_info, visitor), KEYS)


WALKED = [
    *BROKEN,
    'query Q($a: [String!] = ["x"], $b: Boolean! = true) @skip(if: false) {'
    " d: delivery(id: 1) @include(if: $b) { ... on Delivery @skip(if: false) { id } ...F } }"
    " fragment F on Delivery { label kpis { sent } }",
    'mutation { importProfiles(profiles: [{email: "a@b.c", firstName: null}]) { created } }',
]


@pytest.mark.parametrize("text", WALKED)
def test_the_walk_makes_graphql_cores_calls_in_graphql_cores_order(text: str) -> None:
    document = graphql.parse(text)
    assert walked(document, _walk) == walked(document, graphql_cores_walk)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=hypothesis_graphql.queries(SDL) | hypothesis_graphql.mutations(SDL))
def test_the_walk_of_generated_documents_makes_graphql_cores_calls(text: str) -> None:
    document = graphql.parse(text)
    assert walked(document, _walk) == walked(document, graphql_cores_walk)
