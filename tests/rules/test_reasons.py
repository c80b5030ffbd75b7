"""SPEC §4's reason lists (models/enums.py) and the provider tables checked against them when
their module is imported (models/reasons.py). No server: each table's module is executed again
from its source with one row made wrong, and the import must fail, naming the table."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from models.enums import (
    EITHER,
    HARD_ONLY,
    HARD_REASONS,
    IGNORED_REASONS,
    PRODUCT_ONLY,
    SOFT_ONLY,
    SOFT_REASONS,
    FailureReason,
)
from models.reasons import Bounce, ReasonTableError, Verdict, check_table

ROOT = Path(__file__).resolve().parents[2]


def test_the_lists_are_spec_section_4() -> None:
    R = FailureReason
    assert {R.USER_UNKNOWN, R.ADDRESS_EMPTY, R.QUARANTINED_ADDRESS, R.DENYLISTED} == HARD_ONLY
    assert {R.MAILBOX_FULL, R.INVALID_DOMAIN, R.UNDEFINED} == SOFT_ONLY
    assert {R.UNREACHABLE, R.REFUSED, R.ACCOUNT_DISABLED} == EITHER
    assert {R.DUPLICATE, R.ERROR_IGNORED, R.NOT_CONNECTED} == IGNORED_REASONS
    # Every reason is in exactly one row (the product's own included).
    rows = [HARD_ONLY, SOFT_ONLY, EITHER, IGNORED_REASONS, PRODUCT_ONLY]
    assert sorted(r for row in rows for r in row) == sorted(FailureReason)
    assert HARD_REASONS & SOFT_REASONS == EITHER


def test_a_wrong_row_is_refused_with_a_message_naming_table_row_and_lists() -> None:
    with pytest.raises(ReasonTableError, match=r"maps a hard failure to MAILBOX_FULL"):
        Bounce(Verdict.HARD, FailureReason.MAILBOX_FULL)
    with pytest.raises(ReasonTableError, match=r"my table: the row 'x'.*soft reasons:"):
        check_table("my table", [("x", Verdict.SOFT, FailureReason.USER_UNKNOWN)])
    with pytest.raises(ReasonTableError, match="ignored"):
        check_table("t", [("y", Verdict.IGNORED, FailureReason.REFUSED)])
    check_table("t", [("z", Verdict.SOFT, FailureReason.REFUSED)])  # either: fine


def execute(path: str, old: str, new: str) -> ModuleType:
    """Run a module's source again, with `old` replaced by `new`, as a module of its own."""
    source = (ROOT / path).read_text()
    assert source.count(old) == 1, f"{old!r} is not once in {path}: update this test"
    name = "mutated_" + path.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(source.replace(old, new), str(ROOT / path), "exec"), module.__dict__)
    return module


# (module, a row as written, the row made wrong, what the error names)
WRONG_ROWS = [
    (
        "server/mta/smtp.py",
        '"5.2.2": FR.REFUSED,',
        '"5.2.2": FR.MAILBOX_FULL,',
        r"SMTP replies \(REASONS.*'5.2.2' maps a hard failure to MAILBOX_FULL",
    ),
    (
        "server/mta/smtp.py",
        '"4.2.2": FR.MAILBOX_FULL,',
        '"4.2.2": FR.USER_UNKNOWN,',
        r"'4.2.2' maps a soft failure to USER_UNKNOWN",
    ),
    (
        "server/mta/smtp.py",
        "553: FR.USER_UNKNOWN,",
        "553: FR.UNDEFINED,",
        r"BASIC_REASONS.*553 maps a hard failure to UNDEFINED",
    ),
    (
        "server/http/sparkpost.py",
        "10: Bounce(HARD, R.USER_UNKNOWN),",
        "10: Bounce(HARD, R.MAILBOX_FULL),",
        "maps a hard failure to MAILBOX_FULL",
    ),
    (
        "server/http/ses.py",
        '("Transient", "MailboxFull"): Bounce(SOFT, R.MAILBOX_FULL),',
        '("Transient", "MailboxFull"): Bounce(SOFT, R.DENYLISTED),',
        "maps a soft failure to DENYLISTED",
    ),
    (
        "server/http/ses.py",
        '"MailboxFull": R.MAILBOX_FULL,',
        '"MailboxFull": R.USER_UNKNOWN,',
        r"SES delays.*'MailboxFull' maps a soft failure to USER_UNKNOWN",
    ),
    (
        "models/feedback.py",
        "Bounce(Verdict.SOFT, FailureReason.UNDEFINED)",
        "Bounce(Verdict.SOFT, FailureReason.USER_UNKNOWN)",
        "maps a soft failure to USER_UNKNOWN",
    ),
    (
        "server/http/feedback.py",
        "FeedbackType.SOFT_BOUNCE: SOFT_REASONS | IGNORED_REASONS,",
        "FeedbackType.SOFT_BOUNCE: MTA_REASONS,",
        r"the feedback webhook .*'soft_bounce' maps a soft failure to",
    ),
    (
        "server/mta/simulator.py",
        "SOFT_REASONS = [FailureReason.MAILBOX_FULL,",
        "SOFT_REASONS = [FailureReason.USER_UNKNOWN,",
        "the simulator's soft reasons",
    ),
]


@pytest.mark.parametrize(("path", "old", "new", "message"), WRONG_ROWS)
def test_a_wrong_mapping_fails_when_its_module_is_imported(
    path: str, old: str, new: str, message: str
) -> None:
    execute(path, old, old)  # as written, the module imports
    with pytest.raises(ReasonTableError, match=message):
        execute(path, old, new)
