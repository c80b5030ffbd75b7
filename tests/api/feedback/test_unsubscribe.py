"""One-click unsubscribe (RFC 8058) over real HTTP: the GET only asks, the POST puts the address on
the deny list, and the next preparation excludes it as DENYLISTED."""

import httpx

from models.tracking import Token, TokenKind, make_token
from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer
from tests.support.tracking import path, sent

EXCLUSIONS = "query($id: ID!) { delivery(id: $id) { exclusions { reason count } kpis { toSend } } }"
ONE_CLICK = b"List-Unsubscribe=One-Click"  # the body RFC 8058 mail clients post
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def later_preparation(api: Api, emails: list[str]) -> tuple[dict[str, int], int]:
    """Prepare a new delivery to these addresses: (exclusions by reason, to send)."""
    ids = await flows.import_profiles(api, emails)  # type: ignore[arg-type]
    created = await flows.create_delivery(api, ids)
    await flows.prepare(api, created["id"])
    data = (await api.gql(EXCLUSIONS, {"id": created["id"]}))["delivery"]
    return {x["reason"]: x["count"] for x in data["exclusions"]}, data["kpis"]["toSend"]


async def test_the_page_asks_and_only_the_post_unsubscribes(
    server: RunningServer, api: Api
) -> None:
    delivery_id, (first, _second) = await sent(api, 2)
    target = path(server, Token(TokenKind.UNSUBSCRIBE, delivery_id, first))
    async with httpx.AsyncClient(base_url=server.base_url, follow_redirects=False) as http:
        page = await http.get(target)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<form method="post">' in page.text and "<button" in page.text
        assert "no-store" in page.headers["cache-control"]
        # A scanner that follows the link (GET, HEAD) unsubscribes nobody.
        assert (await http.head(target)).status_code == 200
        assert await later_preparation(api, ["user0@example.com"]) == ({}, 1)

        done = await http.post(target, headers=FORM, content=ONE_CLICK)  # what a mail client sends
        assert done.status_code == 200 and "unsubscribed" in done.text
        again = await http.post(target)  # the page's button, a second time: nothing new
        assert again.status_code == 200

    # user0 was the first recipient; user1 is still welcome.
    exclusions, to_send = await later_preparation(api, ["USER0@example.com", "user1@example.com"])
    assert (exclusions, to_send) == ({"DENYLISTED": 1}, 1)


async def test_a_bad_id_is_404_and_changes_nothing(server: RunningServer, api: Api) -> None:
    delivery_id, (first, second) = await sent(api, 2)
    key = server.settings.tracking_key
    valid = make_token(key, Token(TokenKind.UNSUBSCRIBE, delivery_id, first))
    numbers, signature = valid.rsplit(".", 1)
    bad = [
        "/u/nothing",
        f"/u/{numbers}.{signature[::-1]}",
        f"/u/{delivery_id}.{second}.{signature}",  # another recipient, same signature
        "/u/" + make_token(key, Token(TokenKind.OPEN, delivery_id, first)),
        "/u/" + make_token(key, Token(TokenKind.CLICK, delivery_id, first, 0)),
        "/u/" + make_token(key, Token(TokenKind.UNSUBSCRIBE, delivery_id, 2_000_000_000)),
        "/u/" + make_token("another-key", Token(TokenKind.UNSUBSCRIBE, delivery_id, first)),
        "/u/99999999999999999.1." + signature,
    ]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for target in bad:
            for method in ("GET", "POST"):
                response = await http.request(method, target, headers=FORM, content=ONE_CLICK)
                assert response.status_code == 404, (method, target)
                assert "error" in response.json()
    emails = ["user0@example.com", "user1@example.com"]
    assert await later_preparation(api, emails) == ({}, 2)
