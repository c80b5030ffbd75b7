"""A body's links end to end (SPEC §3, §7): a real server relays a tricky body over SMTP, and
each tracking URL found in the received messages is clicked. The parser itself, with no server,
is tested in tests/rules/test_links.py."""

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from models.links import anchors
from models.sql import Sql
from models.template import fill_url
from tests.support import flows
from tests.support.server import RunningServer, api_for
from tests.support.smtp_sink import SmtpSink
from tests.support.tracking import parts

# ---- End to end: preparation, the SMTP message, the click --------------------------------------

E2E_BODY = (
    "<html><head><style>a[href='https://style.example'] {}</style></head><body>"
    "<p>Hello {{firstName}} ({{email}})</p>"
    '<a data-href="https://wrong.example" href="https://shop.example/a?who={{firstName}}'
    '&amp;e={{email}}">one</a>'
    '<!-- <a href="https://comment.example">old</a> -->'
    "<A HREF=https://shop.example/B?x=1&amp;y=2 TITLE='Hi {{firstName}}'>two</A>"
    '<a href="https://shop.example/c" href="https://second.example">three</a>'
    '<a href="{{unsubscribeUrl}}">Unsubscribe</a></body></html>'
)
E2E_LINKS = [
    "https://shop.example/a?who={{firstName}}&e={{email}}",
    "https://shop.example/B?x=1&y=2",
    "https://shop.example/c",
]


async def test_each_click_url_a_recipient_receives_leads_to_the_link_it_replaced(
    sink: SmtpSink, make_server: Callable[..., Any]
) -> None:
    """Ada has a profile; Gone's profile is deleted after preparation: the message and the
    redirect both fall back to the sending log's address for {{email}}."""
    running: RunningServer = await make_server(mta_url=sink.url())
    async for api in api_for(running):
        data = await api.gql(
            "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { profiles { id } } }",
            {
                "p": [
                    {"email": "ada@example.com", "firstName": "Ada"},
                    {"email": "gone@example.com", "firstName": "Gone"},
                ]
            },
        )
        ids = [p["id"] for p in data["importProfiles"]["profiles"]]
        created = await flows.create_delivery(api, ids, subject="Hi", body=E2E_BODY)
        prepared = await flows.prepare(api, created["id"])
        assert prepared["kpis"]["toSend"] == 2
        await Sql().execute("DELETE FROM profile WHERE id = ?", [int(ids[1])])
        await flows.confirm(api, created["id"])
        received = await sink.wait_for(2)

        values = {
            "ada@example.com": {"firstName": "Ada", "email": "ada@example.com"},
            "gone@example.com": {"firstName": None, "email": "gone@example.com"},
        }
        base = f"{running.base_url}/t/c/"
        for item in received:
            address = item.recipients[0]
            mine = values[address]
            html, text = parts(item.message)
            assert f"Hello {mine['firstName'] or ''} ({address})" in html
            clicks = [a.url for a in anchors(html) if a.url.startswith(base)]
            assert len(clicks) == len(E2E_LINKS)
            assert [u for u in clicks if u in text] == clicks
            assert "comment.example" in html and "wrong.example" in html  # left as written
            for url, link in zip(clicks, E2E_LINKS, strict=True):
                response = await api.http.get(url.removeprefix(running.base_url))
                assert response.status_code == 302, url
                assert response.headers["location"] == fill_url(link, mine)
        first = fill_url(E2E_LINKS[0], values["gone@example.com"])
        assert first == f"https://shop.example/a?who=&e={quote('gone@example.com', safe='')}"

        refused = await flows.create_delivery(
            api, ids[:1], body=E2E_BODY.replace("https://shop.example/c", "javascript:x()")
        )
        error = await api.error(
            "mutation($id: ID!) { prepareDelivery(id: $id) { status } }",
            {"id": refused["id"]},
        )
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["errors"] == [
            "the link 'javascript:x()' is not allowed"
            " (javascript:, data: and vbscript: links are never sent)"
        ]
