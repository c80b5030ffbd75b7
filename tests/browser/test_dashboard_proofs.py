"""Send proof and the preview pane in the dashboard (issue 14, section 3), in a real Chromium
against a real SMTP server: the preview shows one profile's copy without following a link or
loading an image, a bad address is refused with nothing sent, and a proof reaches the SMTP
server with its `[Proof #n]` subject while the delivery's figures stay untouched."""

from collections.abc import Callable
from typing import Any

from tests.support import flows
from tests.support.browser import Dashboard, screenshot, tid
from tests.support.server import api_for
from tests.support.smtp_sink import SmtpSink

BODY = (
    '<html><body><h1>Hello {{firstName}}</h1><img src="https://example.com/logo.png" alt="logo">'
    '<p><a href="https://example.com/offer">Our offer</a></p></body></html>'
)


async def test_a_proof_reaches_the_smtp_server_and_the_preview_is_inert(
    page: Any, make_server: Callable[..., Any]
) -> None:
    with SmtpSink() as sink:
        running = await make_server(mta_url=sink.url())
        async for api in api_for(running):
            data = await api.gql(
                "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) {"
                " profiles { id } } }",
                {
                    "p": [
                        {"email": f"{n.lower()}@example.com", "firstName": n} for n in ("Ada", "Bo")
                    ]
                },
            )
            ada, bo = (p["id"] for p in data["importProfiles"]["profiles"])
            created = await flows.create_delivery(
                api, [ada, bo], label="Proofed offer", subject="Hi {{firstName}}", body=BODY
            )
            await flows.prepare(api, created["id"])
            board = Dashboard(page, running)
            await board.open()
            await board.sign_in(api.tokens["preparer"])
            await board.open_delivery(created["id"], "Proofed offer")
            assert await page.is_visible(tid("send-proof"))
            assert await page.is_enabled(tid("send-proof"))

            # The preview, as Bo: personalised, and nothing in it reaches out.
            await page.click(tid("preview-toggle"))
            assert await page.input_value(tid("preview-profile")) == ada  # the first recipient
            await page.fill(tid("preview-profile"), bo)
            await page.click(tid("preview-show"))
            await board.wait_text("preview-subject", "Hi Bo")
            frame = page.frame_locator(tid("preview-html"))
            assert await frame.locator("h1").inner_text() == "Hello Bo"
            assert await frame.locator("a[href], img[src]").count() == 0
            assert await frame.locator("a", has_text="Our offer").count() == 1
            assert "Hello Bo" in str(await page.text_content(tid("preview-text")))

            # A bad address: refused in the dialog, which stays open; nothing is sent.
            await page.click(tid("send-proof"))
            await page.wait_for_selector(f"{tid('proof-dialog')}[open]")
            await page.fill(tid("proof-addresses"), "not-an-address")
            await page.click(tid("proof-ok"))
            await board.wait_text("proof-error", "BAD_USER_INPUT")
            assert await page.is_visible(tid("proof-dialog"))
            assert sink.messages() == []

            await page.fill(tid("proof-addresses"), "reviewer@example.com")
            await page.fill(tid("proof-profiles"), ada)
            await page.click(tid("proof-ok"))
            await page.wait_for_selector(f"{tid('proof-dialog')}:not([open])", state="attached")
            await board.wait_text("action-info", "Proof #1 sent")
            received = await sink.wait_for(2)
            subjects = {r.recipients[0]: str(r.message["Subject"]) for r in received}
            assert subjects["ada@example.com"] == "[Proof #1] Hi Ada"
            assert subjects["reviewer@example.com"].startswith("[Proof #1] Hi ")
            await page.wait_for_selector(f'{tid("proof")}[data-number="1"]')
            assert len(await page.query_selector_all(tid("proof-recipient"))) == 2

            # A proof never counts, and the delivery is still READY.
            assert await board.value("kpi-processed") == "0"
            after = await flows.delivery(api, created["id"])
            assert after["status"] == "READY" and after["kpis"]["processed"] == 0
            await screenshot(page, "dashboard-proof")
            assert board.problems() == []
