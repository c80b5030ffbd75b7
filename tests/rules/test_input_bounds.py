"""Every list a client can send has a bound known before coercion (graphql_schema/input_bounds.py),
and each variable gets the bound of the places it is used in."""

import graphql
import pytest

from graphql_schema.input_bounds import (
    ARGUMENT_LISTS,
    INPUT_FIELD_LISTS,
    ROLE_LESS_VALUES,
    _refusal,
    bounds_for,
)
from graphql_schema.schema import build_schema
from models.operator import Operator

SCHEMA: graphql.GraphQLSchema = build_schema()._schema  # type: ignore[attr-defined]


def is_list(kind: graphql.GraphQLInputType) -> bool:
    if isinstance(kind, graphql.GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, graphql.GraphQLList)


def test_every_list_argument_and_input_field_has_a_bound() -> None:
    arguments, fields = set(), set()
    for name, kind in SCHEMA.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(kind, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType):
            for field_name, field in kind.fields.items():
                arguments |= {
                    (name, field_name, arg)
                    for arg, spec in field.args.items()
                    if is_list(spec.type)
                }
        if isinstance(kind, graphql.GraphQLInputObjectType):
            fields |= {(name, f) for f, spec in kind.fields.items() if is_list(spec.type)}
    assert arguments == set(ARGUMENT_LISTS)
    assert fields == set(INPUT_FIELD_LISTS)
    for directive in SCHEMA.directives:
        assert not any(is_list(a.type) for a in directive.args.values()), directive.name


def refused(document: str, variables: dict[str, object], name: str | None = None) -> str | None:
    error = bounds_for(SCHEMA, graphql.parse(document)).error(name, variables)
    return None if error is None else error.message


STATUSES = "query($s: [DeliveryStatus!]) { deliveries(statuses: $s) { totalCount } }"
CREATE = "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }"
DRAFT = {"label": "x", "channel": "EMAIL", "body": "b"}


@pytest.mark.parametrize(
    ("document", "variables", "message"),
    [
        (STATUSES, {"s": ["SENT"] * 10}, None),
        (STATUSES, {"s": ["SENT"] * 11}, "'statuses' holds at most 10 values (got 11)"),
        (STATUSES, {"s": "SENT"}, None),  # one value, coerced as a list of one
        (STATUSES, {"s": None}, None),
        (CREATE, {"i": {**DRAFT, "audience": {"profileIds": ["1"] * 100_000}}}, None),
        (
            CREATE,
            {"i": {**DRAFT, "audience": {"profileIds": ["1"] * 100_001}}},
            "at most 100000 profileIds (got 100001); use allProfiles for more",
        ),
        (  # a variable inside a literal input object: the input field's bound
            'mutation($ids: [ID!]) { createDelivery(input: {label: "x", channel: EMAIL,'
            ' body: "b", audience: {profileIds: $ids}}) { id } }',
            {"ids": ["1"] * 100_001},
            "at most 100000 profileIds (got 100001); use allProfiles for more",
        ),
        (  # used in two places: the smaller bound; one of them through a fragment
            "mutation($ids: [ID!]) { ...F sendProof(deliveryId: 1, input: {profileIds: $ids})"
            ' { id } } fragment F on Mutation { createDelivery(input: {label: "x",'
            ' channel: EMAIL, body: "b", audience: {profileIds: $ids}}) { id } }',
            {"ids": ["1"] * 21},
            "a proof goes to at most 20 recipients (got 21)",
        ),
        (
            "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { created } }",
            {"p": [{"email": "a@b.c"}] * 10_001},
            "at most 10000 profiles per import (got 10001)",
        ),
    ],
)
def test_a_variable_gets_the_bound_of_where_it_is_used(
    document: str, variables: dict[str, object], message: str | None
) -> None:
    assert refused(document, variables) == message


def test_each_operation_of_a_document_has_its_own_bounds() -> None:
    document = (
        "query A($s: [DeliveryStatus!]) { deliveries(statuses: $s) { totalCount } }"
        " query B($s: [DeliveryStatus!]) { me { name } }"
    )
    assert refused(document, {"s": ["SENT"] * 11}, "A") is not None
    assert refused(document, {"s": ["SENT"] * 11}, "B") is None  # unused: validation says so


def operator(*roles: str) -> Operator:
    return Operator(name="x", roles=list(roles))


PROFILE_IDS = "mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { id } }"
MANY = {"i": {**DRAFT, "audience": {"profileIds": ["1"] * (ROLE_LESS_VALUES + 1)}}}
FEW = {"i": {**DRAFT, "audience": {"profileIds": ["1"] * ROLE_LESS_VALUES}}}


def refusal(document: str, variables: dict[str, object], who: Operator) -> tuple[str, str] | None:
    error = bounds_for(SCHEMA, graphql.parse(document)).error(None, variables, who)
    return None if error is None else (error.extensions["code"], error.message)  # type: ignore[index]


def test_a_long_list_where_the_operator_may_not_use_it_is_forbidden_before_coercion() -> None:
    """An operator without the role would be refused by the field, after graphql-core had
    coerced every value: over ROLE_LESS_VALUES it is refused first, in the field's words."""
    preparer, nobody = operator("PREPARE_DELIVERIES"), operator()
    assert refusal(PROFILE_IDS, MANY, preparer) is None
    assert refusal(PROFILE_IDS, FEW, nobody) is None  # the field refuses it, as before
    assert refusal(PROFILE_IDS, MANY, nobody) == (
        "FORBIDDEN",
        "You are not allowed to run createDelivery: the PREPARE_DELIVERIES role is required.",
    )
    # used under a root field the operator may run as well: left to the fields
    roots = (("deliveries", SCHEMA.query_type.fields["deliveries"]),)  # type: ignore[union-attr]
    mutations = SCHEMA.mutation_type.fields  # type: ignore[union-attr]
    assert _refusal(nobody, (("createDelivery", mutations["createDelivery"]), *roots)) is None
    assert _refusal(nobody, (("createDelivery", mutations["createDelivery"]),)) is not None
    statuses = {"s": ["SENT"] * 10}
    assert refusal(STATUSES, statuses, nobody) is None  # deliveries: any token
