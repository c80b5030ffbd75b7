"""Addresses have one spelling, whoever writes them (models/addresses.py), and their standing is
stored by the address modules only (models/address_status.py, quarantine.py, denylist.py).

Pure tests: no server, no database. The API behaviour is in
tests/api/addresses/test_quarantine_api.py.
"""

import ast
from pathlib import Path

import pytest

from models.addresses import address_for, normalise_address
from models.enums import Channel
from models.errors import BadInput

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Ann@Example.COM ", "ann@example.com"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "0612345678"),
        ("(555) 123-4567", "5551234567"),
    ],
)
def test_an_address_typed_by_an_administrator_is_spelled_as_stored(typed: str, stored: str) -> None:
    channel = Channel.EMAIL if "@" in typed else Channel.SMS
    assert address_for(channel, typed, typed) == (stored, True)
    assert normalise_address(typed) == stored


@pytest.mark.parametrize("typed", ["", "   ", "not an address", "a@b", "12345", "x" * 321])
def test_what_preparation_would_exclude_as_invalid_an_administrator_cannot_name(typed: str) -> None:
    with pytest.raises(BadInput):
        normalise_address(typed)


def test_only_the_address_modules_touch_the_address_status_table() -> None:
    owners = {"models/address_status.py", "models/quarantine.py", "models/denylist.py"}
    wrong = []
    for package in ("models", "graphql_schema", "server"):
        for path in (ROOT / package).rglob("*.py"):
            name = str(path.relative_to(ROOT))
            if name in owners or "migrations" in name:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                sql = isinstance(node, ast.Constant) and "address_status " in str(node.value)
                model = isinstance(node, ast.ImportFrom) and any(
                    alias.name == "AddressStatus" and node.module == "models.address_status"
                    for alias in node.names
                )
                if sql or model:
                    wrong.append(f"{name}:{getattr(node, 'lineno', '?')}")
    assert not wrong, "the address_status table is read or written outside its modules: " + (
        ", ".join(wrong)
    )
