"""SPEC §4, second table: feedback without the Email Feedback Service (mode LEGACY), row by row.

LEGACY is the instance default. Feedback comes only from the signed webhook (capture MTA).
"""

from collections.abc import Callable
from typing import Any

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
from tests.support.server import api_for


async def legacy_delivery(api: Api, count: int, **extra: Any) -> tuple[str, list[str]]:
    done, message_ids = await flows.delivery_with_ids(api, count, "legacy", **extra)
    assert done["feedbackMode"] == "LEGACY"
    return done["id"], message_ids


async def test_legacy_is_the_instance_default_and_relayed_counts_as_delivered(api: Api) -> None:
    delivery_id, message_ids = await legacy_delivery(api, 4)
    for message_id in message_ids:
        assert await log_of(api, delivery_id, message_id) == log_state("SENT")
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 4, 0, 0, 100.0, 0.0)


async def test_legacy_override_on_an_efs_instance_relays_as_sent(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(feedback_mode="EFS")
    async for api in api_for(running):
        done, logs = await flows.sent_delivery(api, ["one@example.com"], feedbackMode="LEGACY")
        assert done["feedbackMode"] == "LEGACY"
        assert [log["status"] for log in logs] == ["SENT"]
        assert await current_kpis(api, done["id"]) == kpis(1, 1, 1, 0, 0, 100.0, 0.0)


async def test_legacy_walks_hard_soft_and_successful_retry_rows(api: Api) -> None:
    delivery_id, (hard, soft, delivered, silent) = await legacy_delivery(api, 4)

    # MTA reports a hard bounce: FAILED, Delivered % goes down, Bounces + errors % goes up.
    await report(api, hard, "hard_bounce", "USER_UNKNOWN")
    assert await log_of(api, delivery_id, hard) == log_state("FAILED", "HARD", "USER_UNKNOWN")
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 3, 0, 1, 75.0, 25.0)

    # MTA reports a soft bounce: no change (the log stays SENT, the failure is noted).
    await report(api, soft, "soft_bounce", "MAILBOX_FULL")
    assert await log_of(api, delivery_id, soft) == log_state("SENT", "SOFT", "MAILBOX_FULL", 1)
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 3, 0, 1, 75.0, 25.0)

    # A retry of the soft bounce succeeds: no change.
    await report(api, soft, "delivered")
    assert await log_of(api, delivery_id, soft) == log_state("SENT", retries=1)
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 3, 0, 1, 75.0, 25.0)

    # Delivery of a message LEGACY already counted as sent: no change.
    await report(api, delivered, "delivered")
    assert await log_of(api, delivery_id, delivered) == log_state("SENT")
    assert await current_kpis(api, delivery_id) == kpis(4, 4, 3, 0, 1, 75.0, 25.0)

    assert await log_of(api, delivery_id, silent) == log_state("SENT")
    assert await computed_kpis(api, delivery_id) == await current_kpis(api, delivery_id)


async def test_legacy_retry_that_soft_bounces_again_stays_sent_and_counts_the_retry(
    api: Api,
) -> None:
    delivery_id, (message_id,) = await legacy_delivery(api, 1)
    await report(api, message_id, "soft_bounce", "MAILBOX_FULL")
    await report(api, message_id, "soft_bounce", "INVALID_DOMAIN")
    assert await log_of(api, delivery_id, message_id) == log_state(
        "SENT", "SOFT", "INVALID_DOMAIN", 2
    )
    assert await current_kpis(api, delivery_id) == kpis(1, 1, 1, 0, 0, 100.0, 0.0)


async def test_legacy_retry_that_hard_bounces_fails_for_good(api: Api) -> None:
    delivery_id, (message_id,) = await legacy_delivery(api, 1)
    await report(api, message_id, "soft_bounce", "MAILBOX_FULL")
    await report(api, message_id, "hard_bounce", "ACCOUNT_DISABLED")
    failed = log_state("FAILED", "HARD", "ACCOUNT_DISABLED", 1)
    assert await log_of(api, delivery_id, message_id) == failed
    assert await current_kpis(api, delivery_id) == kpis(1, 1, 0, 0, 1, 0.0, 100.0)

    # A hard bounce is final: a later delivery report changes nothing.
    await report(api, message_id, "delivered")
    assert await log_of(api, delivery_id, message_id) == failed
    assert await current_kpis(api, delivery_id) == kpis(1, 1, 0, 0, 1, 0.0, 100.0)


async def test_legacy_end_of_validity_fails_soft_bounces_and_keeps_unreported_sent(
    api: Api,
) -> None:
    delivery_id, (soft, silent, hard) = await legacy_delivery(api, 3, validityPeriod=clock.VALIDITY)
    await report(api, soft, "soft_bounce", "MAILBOX_FULL")
    await report(api, hard, "hard_bounce", "USER_UNKNOWN")
    assert await current_kpis(api, delivery_id) == kpis(3, 3, 2, 0, 1, 66.67, 33.33)

    finished = await clock.finished(api, delivery_id)

    assert finished["status"] == "FINISHED"
    # The retries of a soft bounce fail: FAILED, Delivered % down, Bounces + errors % up.
    assert await log_of(api, delivery_id, soft) == log_state("FAILED", "SOFT", "MAILBOX_FULL", 1)
    # No report at all: the log keeps its status.
    assert await log_of(api, delivery_id, silent) == log_state("SENT")
    assert await log_of(api, delivery_id, hard) == log_state("FAILED", "HARD", "USER_UNKNOWN")
    after = kpis(3, 3, 1, 0, 2, 33.33, 66.67)
    assert await current_kpis(api, delivery_id) == after
    assert await computed_kpis(api, delivery_id) == after


async def test_legacy_soft_bounce_retried_successfully_is_not_failed_at_expiry(api: Api) -> None:
    delivery_id, (message_id,) = await legacy_delivery(api, 1, validityPeriod=clock.VALIDITY)
    await report(api, message_id, "soft_bounce", "MAILBOX_FULL")
    await report(api, message_id, "delivered")
    await clock.finished(api, delivery_id)
    assert await log_of(api, delivery_id, message_id) == log_state("SENT", retries=1)
    assert await current_kpis(api, delivery_id) == kpis(1, 1, 1, 0, 0, 100.0, 0.0)


async def test_legacy_events_after_the_validity_period_are_recorded_but_change_nothing(
    api: Api,
) -> None:
    delivery_id, (soft, silent, hard) = await legacy_delivery(api, 3, validityPeriod=clock.VALIDITY)
    await report(api, soft, "soft_bounce", "MAILBOX_FULL")
    await clock.finished(api, delivery_id)
    logs_before = await flows.logs(api, delivery_id)
    kpis_before = await current_kpis(api, delivery_id)
    assert kpis_before == kpis(3, 3, 2, 0, 1, 66.67, 33.33)

    late = [
        event(soft, "delivered"),
        event(silent, "soft_bounce", reason="MAILBOX_FULL"),
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
    assert (await flows.delivery(api, delivery_id))["status"] == "FINISHED"
