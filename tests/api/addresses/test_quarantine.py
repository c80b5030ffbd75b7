"""Quarantine (SPEC §4): which reports put an address in quarantine, and what releases it.

An address in quarantine shows in a later delivery's preparation as an exclusion with the
reason QUARANTINED_ADDRESS.
"""

from collections.abc import Callable
from typing import Any

from tests.support import flows
from tests.support.client import Api, at, event
from tests.support.feedback_steps import report_all
from tests.support.server import api_for

EXCLUSIONS = "query($id: ID!) { delivery(id: $id) { exclusions { reason count } kpis { toSend } } }"


async def first_delivery(api: Api, emails: list[str], mode: str = "EFS") -> dict[str, str]:
    """Send to the addresses; returns address -> MTA message id."""
    _, logs = await flows.sent_delivery(api, list(emails), feedbackMode=mode)
    return {log["address"]: log["messageId"] for log in logs}


async def later_preparation(api: Api, emails: list[str]) -> tuple[dict[str, int], int, set[str]]:
    """Prepare a new delivery to the addresses plus a clean one (preparation refuses an empty
    target): (exclusions by reason, to send, quarantined addresses)."""
    profile_ids = await flows.import_profiles(api, [*emails, "control@example.com"])
    created = await flows.create_delivery(api, profile_ids, label="Later offer")
    await flows.prepare(api, created["id"])
    data = (await api.gql(EXCLUSIONS, {"id": created["id"]}))["delivery"]
    excluded = {
        log["address"]
        for log in await flows.logs(api, created["id"])
        if log["excluded"] and log["failureReason"] == "QUARANTINED_ADDRESS"
    }
    by_reason = {x["reason"]: x["count"] for x in data["exclusions"]}
    return by_reason, data["kpis"]["toSend"], excluded


async def strict_api(make_server: Callable[..., Any]) -> Any:
    """A server whose quarantine threshold is 2 soft errors, with no minimum gap."""
    running = await make_server(quarantine_threshold=2, quarantine_gap_hours=0)
    return api_for(running)


async def test_hard_bounce_quarantines_the_address_at_once(api: Api) -> None:
    emails = ["gone@example.com", "fine@example.com"]
    ids = await first_delivery(api, emails)
    await report_all(api, event(ids["gone@example.com"], "hard_bounce", reason="USER_UNKNOWN"))

    exclusions, to_send, quarantined = await later_preparation(api, emails)
    assert exclusions == {"QUARANTINED_ADDRESS": 1}
    assert to_send == 2
    assert quarantined == {"gone@example.com"}


async def test_quarantine_matches_the_address_whatever_its_case(api: Api) -> None:
    ids = await first_delivery(api, ["Gone@Example.COM"])
    await report_all(api, event(ids["gone@example.com"], "hard_bounce", reason="USER_UNKNOWN"))
    exclusions, to_send, quarantined = await later_preparation(api, ["GONE@example.com"])
    assert (exclusions, to_send) == ({"QUARANTINED_ADDRESS": 1}, 1)
    assert quarantined == {"gone@example.com"}


async def test_hard_bounce_quarantines_in_legacy_mode_too(api: Api) -> None:
    ids = await first_delivery(api, ["gone@example.com"], mode="LEGACY")
    await report_all(api, event(ids["gone@example.com"], "hard_bounce", reason="USER_UNKNOWN"))
    exclusions, to_send, _ = await later_preparation(api, ["gone@example.com"])
    assert (exclusions, to_send) == ({"QUARANTINED_ADDRESS": 1}, 1)


async def test_one_soft_bounce_under_the_default_threshold_does_not_quarantine(api: Api) -> None:
    ids = await first_delivery(api, ["full@example.com"])
    await report_all(api, event(ids["full@example.com"], "soft_bounce", reason="MAILBOX_FULL"))
    exclusions, to_send, _ = await later_preparation(api, ["full@example.com"])
    assert (exclusions, to_send) == ({}, 2)


async def test_soft_errors_quarantine_when_the_counter_reaches_the_threshold(
    make_server: Callable[..., Any],
) -> None:
    async for api in await strict_api(make_server):
        emails = ["twice@example.com", "once@example.com"]
        ids = await first_delivery(api, emails)
        await report_all(
            api,
            event(ids["twice@example.com"], "soft_bounce", reason="MAILBOX_FULL", at=at(0)),
            event(ids["once@example.com"], "soft_bounce", reason="MAILBOX_FULL", at=at(0)),
        )
        await report_all(
            api, event(ids["twice@example.com"], "soft_bounce", reason="MAILBOX_FULL", at=at(1))
        )

        exclusions, to_send, quarantined = await later_preparation(api, emails)
        assert exclusions == {"QUARANTINED_ADDRESS": 1}
        assert to_send == 2
        assert quarantined == {"twice@example.com"}


async def test_soft_errors_closer_than_the_minimum_gap_count_once(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(quarantine_threshold=2)  # the default gap: 24 hours
    async for api in api_for(running):
        ids = await first_delivery(api, ["busy@example.com"])
        message_id = ids["busy@example.com"]
        await report_all(api, event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=at(0)))
        await report_all(api, event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=at(60)))
        exclusions, to_send, _ = await later_preparation(api, ["busy@example.com"])
        assert (exclusions, to_send) == ({}, 2)


async def test_soft_error_counter_starts_again_after_ten_quiet_days(
    make_server: Callable[..., Any],
) -> None:
    async for api in await strict_api(make_server):
        ids = await first_delivery(api, ["old@example.com"])
        message_id = ids["old@example.com"]
        long_ago = at(-11 * 24 * 3600)
        await report_all(api, event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=long_ago))
        await report_all(api, event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=at(0)))
        exclusions, to_send, _ = await later_preparation(api, ["old@example.com"])
        assert (exclusions, to_send) == ({}, 2)


async def test_soft_errors_across_deliveries_add_up(make_server: Callable[..., Any]) -> None:
    async for api in await strict_api(make_server):
        first = await first_delivery(api, ["flaky@example.com"])
        await report_all(api, event(first["flaky@example.com"], "soft_bounce", at=at(0)))
        second = await first_delivery(api, ["flaky@example.com"])
        await report_all(api, event(second["flaky@example.com"], "soft_bounce", at=at(1)))

        exclusions, _, quarantined = await later_preparation(api, ["flaky@example.com"])
        assert exclusions == {"QUARANTINED_ADDRESS": 1}
        assert quarantined == {"flaky@example.com"}


async def test_delivery_after_a_soft_bounce_releases_the_address_and_resets_its_counter(
    make_server: Callable[..., Any],
) -> None:
    async for api in await strict_api(make_server):
        ids = await first_delivery(api, ["back@example.com"])
        message_id = ids["back@example.com"]
        await report_all(api, event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=at(0)))
        await report_all(api, event(message_id, "soft_bounce", reason="MAILBOX_FULL", at=at(1)))
        exclusions, _, _ = await later_preparation(api, ["back@example.com"])
        assert exclusions == {"QUARANTINED_ADDRESS": 1}

        await report_all(api, event(message_id, "delivered", at=at(2)))  # the retry succeeded
        exclusions, to_send, _ = await later_preparation(api, ["back@example.com"])
        assert (exclusions, to_send) == ({}, 2)

        # The counter started again: one new soft error is under the threshold of 2.
        again = await first_delivery(api, ["back@example.com"])
        await report_all(api, event(again["back@example.com"], "soft_bounce", at=at(3)))
        exclusions, to_send, _ = await later_preparation(api, ["back@example.com"])
        assert (exclusions, to_send) == ({}, 2)


async def test_ignored_errors_never_quarantine_nor_change_the_log(
    make_server: Callable[..., Any],
) -> None:
    async for api in await strict_api(make_server):
        done, (log,) = await flows.sent_delivery(api, ["ignored@example.com"], feedbackMode="EFS")
        delivery_id = done["id"]
        await report_all(
            api,
            event(log["messageId"], "hard_bounce", reason="ERROR_IGNORED", at=at(0)),
            event(log["messageId"], "soft_bounce", reason="ERROR_IGNORED", at=at(1)),
            event(log["messageId"], "soft_bounce", reason="ERROR_IGNORED", at=at(2)),
        )
        (after,) = await flows.logs(api, delivery_id)
        assert after == log  # still PENDING, no failure, no retry
        kpis = (await flows.delivery(api, delivery_id))["kpis"]
        assert (kpis["pending"], kpis["failed"]) == (1, 0)

        exclusions, to_send, _ = await later_preparation(api, ["ignored@example.com"])
        assert (exclusions, to_send) == ({}, 2)
