"""A recipient's personalisation values ({{firstName}} …) come from one function,
models.template.field_values, for the MIME composer and the click redirect alike.

tests/api/tracking/test_links.py checks end to end that a message and its redirects agree, a deleted
profile included; here the rule itself, on both databases, and a guard against a second copy.
"""

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.profile import Profile
from models.sql import Sql
from models.template import FIELDS, field_values

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Recipient:
    log_id: int
    profile_id: int | None
    address: str


async def test_each_recipient_gets_its_profile_values_or_its_logged_address(
    make_server: Callable[..., Any],
) -> None:
    await make_server()  # the database, migrated, and the ORM connected to it
    ada = await Profile.create(email="ada@x.example", first_name="Ada", last_name="L", phone="+336")
    nomail = await Profile.create(email=None, first_name="Nomail")
    ids = {"Ada": ada.id, "Nomail": nomail.id}
    sql = Sql()
    recipients = [
        Recipient(1, ids["Ada"], "ada@x.example"),
        Recipient(2, ids["Nomail"], "logged@example.com"),  # no email on the profile
        Recipient(3, None, "gone@example.com"),  # the profile was deleted
        Recipient(4, 10**6, "missing@example.com"),  # a profile id with no row
        Recipient(5, None, "+33612345678"),  # an SMS log: no email to fall back on
    ]
    values = await field_values(recipients, sql)
    empty = dict.fromkeys(FIELDS)
    assert values == {
        1: {"firstName": "Ada", "lastName": "L", "email": "ada@x.example", "phone": "+336"},
        2: {**empty, "firstName": "Nomail", "email": "logged@example.com"},
        3: {**empty, "email": "gone@example.com"},
        4: {**empty, "email": "missing@example.com"},
        5: empty,
    }
    # One recipient (the redirect) gets what it gets in a batch (the composer).
    for recipient in recipients:
        alone = await field_values([recipient], sql)
        assert alone == {recipient.log_id: values[recipient.log_id]}


def test_only_models_template_reads_the_profile_fields() -> None:
    """The drift guard: one `field_values`, and FIELDS read only where the fields are defined
    and by preparation (which lists them in its error message)."""
    definitions, readers = [], set()
    for package in ("models", "graphql_schema", "server"):
        for path in (ROOT / package).rglob("*.py"):
            name = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    node.name == "field_values"
                ):
                    definitions.append(name)
                if isinstance(node, ast.Name) and node.id == "FIELDS":
                    readers.add(name)
    assert definitions == ["models/template.py"], definitions
    assert readers <= {"models/template.py", "models/preparation.py"}, readers
