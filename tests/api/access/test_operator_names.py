"""Issue 11, finding 11: an operator's name reads as what it is.

`confirmedBy`, `approvedBy` and the audit trail show names, so a name with a zero-width space
must not pass for another operator, and a 5,000-character name is a clear BAD_USER_INPUT, not
an internal error. One rule (models/operator.py) serves the API and the command line.
"""

import pytest

from models.errors import BadInput
from models.operator import MAX_NAME, operator_name
from tests.support.client import Api

CREATE = (
    "mutation($n: String!) { createOperator(name: $n, roles: [APPROVE_DELIVERIES])"
    " { token operator { name roles } } }"
)
CREATED = "{ auditEvents(action: OPERATOR_CREATED) { totalCount edges { node { detail } } } }"

REFUSED = {
    "too long": ("x" * 5000, f"at most {MAX_NAME} characters"),
    "empty": ("   \t ", "needs a name"),
    "zero-width space": ("ad\u200ba", "U+200B (ZERO WIDTH SPACE)"),
    "zero-width joiner": ("ada\u200d", "U+200D"),
    "right-to-left override": ("\u202enimda", "U+202E"),
    "bidi isolate": ("ada\u2066x\u2069", "U+2066"),
    "soft hyphen": ("a\u00adda", "U+00AD"),
    "byte-order mark": ("\ufeffada", "U+FEFF"),
    "control character": ("ada\x07", "U+0007"),
    "hangul filler": ("ada\u3164", "FILLER"),  # NFKC makes it U+1160, refused as well
    "braille blank": ("\u2800", "U+2800"),
    "leading combining mark": ("\u0301ada", "combining mark"),
}
NORMALISED = {
    "  Ada   Lovelace ": "Ada Lovelace",
    "Ada\tLovelace": "Ada Lovelace",
    "Ada\u00a0Lovelace": "Ada Lovelace",  # no-break space
    "\uff21\uff44\uff41": "Ada",  # full-width letters
    "José Müller": "José Müller",
    "Jose\u0301": "José",  # composed
    "ops-team_2 (night)": "ops-team_2 (night)",
}


@pytest.mark.parametrize(("raw", "says"), REFUSED.values(), ids=REFUSED.keys())
def test_finding_11_a_name_that_does_not_read_as_itself_is_refused(raw: str, says: str) -> None:
    with pytest.raises(BadInput) as refused:
        operator_name(raw)
    assert refused.value.code == "BAD_USER_INPUT"
    assert says in refused.value.message


@pytest.mark.parametrize(("raw", "stored"), NORMALISED.items())
def test_finding_11_names_are_normalised(raw: str, stored: str) -> None:
    assert operator_name(raw) == stored


async def test_finding_11_create_operator_refuses_bad_names_and_writes_nothing(api: Api) -> None:
    before = (await api.gql(CREATED))["auditEvents"]["totalCount"]
    for raw, says in REFUSED.values():
        error = await api.error(CREATE, {"n": raw})
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (raw, error)
        assert says in error["message"]
    assert (await api.gql(CREATED))["auditEvents"]["totalCount"] == before

    created = (await api.gql(CREATE, {"n": "  Ada   Lovelace "}))["createOperator"]
    assert created["operator"] == {"name": "Ada Lovelace", "roles": ["APPROVE_DELIVERIES"]}
    assert (await api.gql("{ me { name } }", as_=created["token"]))["me"]["name"] == "Ada Lovelace"
    events = (await api.gql(CREATED))["auditEvents"]
    assert events["totalCount"] == before + 1
    detail = events["edges"][0]["node"]["detail"]
    assert (detail["targetOperator"], detail["roles"]) == ("Ada Lovelace", ["APPROVE_DELIVERIES"])

    # What looks the same after normalisation is the same name: already taken.
    for lookalike in ("\uff21\uff44\uff41 Lovelace", "Ada\u00a0Lovelace", " Ada Lovelace"):
        error = await api.error(CREATE, {"n": lookalike})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "already exists" in error["message"], error
