"""Browser tests run on SQLite only: the database is not what they test."""

import pytest

from tests.support.browser import page  # noqa: F401  (the fixture)


@pytest.fixture
def db_kind() -> str:
    return "sqlite"
