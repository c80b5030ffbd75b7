"""The journey of SPEC §2 in one walk: import, create, prepare, confirm, relay."""

from tests.support import flows
from tests.support.client import Api


async def test_a_confirmed_delivery_is_relayed_to_every_recipient(api: Api) -> None:
    done, logs = await flows.sent_delivery(api, [f"user{i}@example.com" for i in range(5)])
    assert done["kpis"]["toSend"] == 5
    assert done["kpis"]["processed"] == 5
    assert {log["status"] for log in logs} == {"SENT"}  # LEGACY: relayed means SENT
    assert len({log["messageId"] for log in logs}) == 5
