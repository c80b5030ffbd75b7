"""SPEC §4, first table: feedback with the Email Feedback Service (mode EFS), row by row.

Feedback comes only from the signed webhook (capture MTA), so every step is one report.
"""

from datetime import UTC, datetime, timedelta

from tests.support import clock, flows
from tests.support.client import Api, event
from tests.support.feedback_steps import (
    computed_kpis,
    current_kpis,
    kpis,
    log_of,
    log_state,
    report,
)
from tests.support.flows import efs_delivery


async def test_efs_relayed_message_is_pending_and_both_rates_start_at_zero(api: Api) -> None:
    delivery_id, message_ids = await efs_delivery(api, 4)
    for message_id in message_ids:
        assert await log_of(api, delivery_id, message_id) == log_state("PENDING")
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 0, 4, 0, 0.0, 0.0)


async def test_efs_walks_delivered_hard_soft_and_successful_retry_rows(api: Api) -> None:
    delivery_id, (delivered, hard, soft, silent) = await efs_delivery(api, 4)

    # MTA reports delivery in real time: SENT, Delivered % goes up.
    await report(api, delivered, "delivered")
    assert await log_of(api, delivery_id, delivered) == log_state("SENT")
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 1, 3, 0, 25.0, 0.0)

    # MTA reports a hard bounce: FAILED, Delivered % unchanged, Bounces + errors % goes up.
    await report(api, hard, "hard_bounce", "USER_UNKNOWN")
    assert await log_of(api, delivery_id, hard) == log_state("FAILED", "HARD", "USER_UNKNOWN")
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 1, 2, 1, 25.0, 25.0)

    # MTA reports a soft bounce: FAILED, Delivered % unchanged, Bounces + errors % goes up.
    await report(api, soft, "soft_bounce", "MAILBOX_FULL")
    assert await log_of(api, delivery_id, soft) == log_state("FAILED", "SOFT", "MAILBOX_FULL", 1)
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 1, 1, 2, 25.0, 50.0)

    # A retry of the soft bounce succeeds: SENT, Delivered % up, Bounces + errors % down.
    await report(api, soft, "delivered")
    assert await log_of(api, delivery_id, soft) == log_state("SENT", retries=1)
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 2, 1, 1, 50.0, 25.0)

    assert await log_of(api, delivery_id, silent) == log_state("PENDING")
    assert await computed_kpis(api, delivery_id) == await current_kpis(api, delivery_id)


async def test_efs_retry_that_soft_bounces_again_stays_failed_and_counts_the_retry(
    api: Api,
) -> None:
    delivery_id, (message_id,) = await efs_delivery(api, 1)
    await report(api, message_id, "soft_bounce", "MAILBOX_FULL")
    await report(api, message_id, "soft_bounce", "UNREACHABLE")
    assert await log_of(api, delivery_id, message_id) == log_state(
        "FAILED", "SOFT", "UNREACHABLE", 2
    )
    assert await current_kpis(api, delivery_id) == kpis(1, 1, 0, 0, 1, 0.0, 100.0)
    assert await computed_kpis(api, delivery_id) == await current_kpis(api, delivery_id)


async def test_efs_retry_that_hard_bounces_fails_for_good(api: Api) -> None:
    delivery_id, (message_id,) = await efs_delivery(api, 1)
    await report(api, message_id, "soft_bounce", "MAILBOX_FULL")
    await report(api, message_id, "hard_bounce", "ACCOUNT_DISABLED")
    failed = log_state("FAILED", "HARD", "ACCOUNT_DISABLED", 1)
    assert await log_of(api, delivery_id, message_id) == failed
    assert await current_kpis(api, delivery_id) == kpis(1, 1, 0, 0, 1, 0.0, 100.0)

    # A hard bounce is final: a later delivery report changes nothing.
    await report(api, message_id, "delivered")
    assert await log_of(api, delivery_id, message_id) == failed
    assert await current_kpis(api, delivery_id) == kpis(1, 1, 0, 0, 1, 0.0, 100.0)


async def test_efs_end_of_validity_keeps_failed_soft_bounces_and_unreported_pending(
    api: Api,
) -> None:
    delivery_id, (soft, silent, delivered) = await efs_delivery(
        api, 3, validityPeriod=clock.VALIDITY
    )
    await report(api, soft, "soft_bounce", "MAILBOX_FULL")
    await report(api, soft, "soft_bounce", "MAILBOX_FULL")  # the retry fails too
    await report(api, delivered, "delivered")
    before = kpis(3, 3, 1, 1, 1, 33.33, 33.33)
    assert await current_kpis(api, delivery_id) == before

    finished = await clock.finished(api, delivery_id)

    assert finished["status"] == "FINISHED"
    # The retries of a soft bounce fail (validity period over): no change.
    assert await log_of(api, delivery_id, soft) == log_state("FAILED", "SOFT", "MAILBOX_FULL", 2)
    # No report at all: the log keeps its status.
    assert await log_of(api, delivery_id, silent) == log_state("PENDING")
    assert await log_of(api, delivery_id, delivered) == log_state("SENT")
    assert await current_kpis(api, delivery_id) == before
    assert await computed_kpis(api, delivery_id) == before


async def test_efs_events_after_the_validity_period_are_recorded_but_change_nothing(
    api: Api,
) -> None:
    delivery_id, (soft, silent, hard) = await efs_delivery(api, 3, validityPeriod=clock.VALIDITY)
    await report(api, soft, "soft_bounce", "MAILBOX_FULL")
    await clock.finished(api, delivery_id)
    logs_before = await flows.logs(api, delivery_id)
    kpis_before = await current_kpis(api, delivery_id)
    assert kpis_before == kpis(3, 3, 0, 2, 1, 0.0, 33.33)

    late = [
        event(soft, "delivered"),
        event(silent, "delivered"),
        event(hard, "hard_bounce", reason="USER_UNKNOWN"),
    ]
    response = await api.feedback(late)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "duplicates": 0, "unknown": 0}
    assert await flows.logs(api, delivery_id) == logs_before
    assert await current_kpis(api, delivery_id) == kpis_before
    # Recorded: the same events sent again are duplicates.
    again = await api.feedback(late)
    assert again.json() == {"accepted": 0, "duplicates": 3, "unknown": 0}
    assert await computed_kpis(api, delivery_id) == kpis_before
    finished = await flows.delivery(api, delivery_id)
    assert finished["status"] == "FINISHED"


async def test_efs_report_older_than_the_first_relay_still_applies_once(api: Api) -> None:
    """A report stamped earlier than now (but with no event before it on the log) applies."""
    delivery_id, (message_id,) = await efs_delivery(api, 1)
    await report(api, message_id, "delivered", at=datetime.now(UTC) - timedelta(minutes=5))
    assert await log_of(api, delivery_id, message_id) == log_state("SENT")
    assert await current_kpis(api, delivery_id) == kpis(1, 1, 1, 0, 0, 100.0, 0.0)
