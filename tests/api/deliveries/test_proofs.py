"""Proofs and previews before the confirm (issue 14, docs/proofs.md), over HTTP on both databases.

The SMTP test is the whole journey against a real SMTP server: a preview, two proofs (one to a
bare address, rendered as a sample of the audience, one to a profile, rendered as itself), then
the real send, whose message to a profile is byte for byte its preview, and figures that count
the send only. The capture test is the careless and hostile client: roles, revoked tokens,
too many or bad recipients (nothing sent), a wrong status, and requireProof across an edit.
"""

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from models.sql import Sql
from tests.support import flows
from tests.support.client import Api
from tests.support.server import RunningServer, api_for, free_port
from tests.support.smtp_sink import Script, SmtpSink

BODY = (
    "<html><body><h1>Hello {{firstName}}</h1>"
    '<p><a href="https://example.com/offer?who={{email}}">Our offer</a></p>'
    '<p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p></body></html>'
)
PREVIEW = (
    "query($id: ID!, $p: ID!) { previewDelivery(id: $id, profileId: $p) { subject html text } }"
)
SEND_PROOF = (
    "mutation($id: ID!, $i: SendProofInput!) { sendProof(deliveryId: $id, input: $i) {"
    " number sentAt sentBy accepted recipients { address profileId outcome detail } } }"
)
PROOFS = "query($id: ID!) { delivery(id: $id) { requireProof proofs { number sentBy accepted } } }"
FIGURES = "toSend processed sent pending failed opens clicks unsubscriptions complaints"


@pytest.fixture
def make_sink() -> Iterator[Callable[..., SmtpSink]]:
    sinks: list[SmtpSink] = []

    def start(script: Script | None = None) -> SmtpSink:
        sink = SmtpSink(script).__enter__()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.__exit__()


async def people(api: Api, *names: str) -> dict[str, str]:
    """Profiles named `names` (ada@example.com ...): their ids by first name."""
    data = await api.gql(
        "mutation($p: [ProfileInput!]!) { importProfiles(profiles: $p) { profiles { id } } }",
        {"p": [{"email": f"{n.lower()}@example.com", "firstName": n} for n in names]},
    )
    return dict(zip(names, (p["id"] for p in data["importProfiles"]["profiles"]), strict=True))


async def figures(api: Api, delivery_id: str) -> dict[str, Any]:
    query = f"query($id: ID!) {{ delivery(id: $id) {{ kpis {{ {FIGURES} }} }} }}"
    kpis: dict[str, Any] = (await api.gql(query, {"id": delivery_id}))["delivery"]["kpis"]
    return kpis


async def tracking_rows(delivery_id: int) -> list[dict[str, Any]]:
    """The delivery's tracking logs, read in the server's database (same process)."""
    return await Sql().rows(
        "SELECT kind, hits FROM tracking_log WHERE delivery_id = ? ORDER BY id", [delivery_id]
    )


def url_in(html: str, attribute: str, path: str) -> str:
    """The first URL in `html` written as `attribute` whose path has `path`."""
    return next(
        chunk.split('"')[0] for chunk in html.split(attribute)[1:] if path in chunk.split('"')[0]
    )


def parts(received: Any) -> tuple[str, str, str]:
    message = received.message
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    return str(message["Subject"]), html.get_content(), text.get_content()


async def test_a_proof_over_smtp_and_a_preview_show_the_message_the_mta_then_gets(
    make_sink: Callable[..., SmtpSink], make_server: Callable[..., Any]
) -> None:
    sink = make_sink(Script(always={"nobody@example.org": "550 5.1.1 No such user"}))
    running: RunningServer = await make_server(
        mta_url=sink.url(),
        mail_from="Shop <shop@example.org>",
        feedback_mode="EFS",
        tracking_flush_seconds=0.05,
    )
    async for api in api_for(running):
        ids = await people(api, "Ada", "Bob")
        created = await flows.create_delivery(
            api, [ids["Ada"], ids["Bob"]], subject="Hello {{firstName}}", body=BODY
        )
        delivery_id = created["id"]
        await flows.prepare(api, delivery_id)

        # The preview: personalised, tracked, with the pixel; any role may read it.
        variables = {"id": delivery_id, "p": ids["Ada"]}
        preview = (await api.gql(PREVIEW, variables, as_="approver"))["previewDelivery"]
        assert preview["subject"] == "Hello Ada"
        assert "<h1>Hello Ada</h1>" in preview["html"]
        assert f"{running.base_url}/t/o/" in preview["html"]  # the open pixel
        assert f"{running.base_url}/t/c/" in preview["html"]  # the tracked link
        assert "Hello Ada" in preview["text"] and "/t/c/" in preview["text"]
        # Its URLs are Ada's own; followed before the send, they record nothing.
        pixel = url_in(preview["html"], 'src="', "/t/o/")
        click = url_in(preview["html"], 'href="', "/t/c/")
        preview_unsubscribe = url_in(preview["html"], 'href="', "/u/")
        async with httpx.AsyncClient() as http:
            assert (await http.get(pixel)).status_code == 200
            redirect = await http.get(click)
            assert redirect.headers["location"] == "https://example.com/offer?who=ada%40example.com"
            assert (await http.post(preview_unsubscribe)).status_code == 404

        # Two proofs: to a profile (as itself) and to a bare address (as the audience's first).
        first = (
            await api.gql(
                SEND_PROOF,
                {
                    "id": delivery_id,
                    "i": {"addresses": ["Review@Example.org"], "profileIds": [ids["Bob"]]},
                },
                as_="preparer",
            )
        )["sendProof"]
        assert first["number"] == 1 and first["accepted"] == 2
        assert [(r["address"], r["profileId"], r["outcome"]) for r in first["recipients"]] == [
            ("bob@example.com", ids["Bob"], "ACCEPTED"),
            ("review@example.org", None, "ACCEPTED"),
        ]
        assert first["sentBy"].startswith("preparer")
        got = {r.recipients[0]: r for r in await sink.wait_for(2)}
        assert set(got) == {"bob@example.com", "review@example.org"}
        bob_subject, bob_html, bob_text = parts(got["bob@example.com"])
        assert bob_subject == "[Proof #1] Hello Bob"
        assert "<h1>Hello Bob</h1>" in bob_html
        # Untracked: the link is its target with the fields filled; no pixel, no tracked link.
        assert 'href="https://example.com/offer?who=bob%40example.com"' in bob_html
        assert "https://example.com/offer?who=bob%40example.com" in bob_text
        assert "/t/o/" not in bob_html and "/t/c/" not in bob_html + bob_text
        assert got["bob@example.com"].message["List-Unsubscribe"] is None
        assert got["bob@example.com"].message["X-Delivery-Proof"] == "1"
        assert got["bob@example.com"].sender == "shop@example.org"
        sample_subject, sample_html, _ = parts(got["review@example.org"])
        assert sample_subject == "[Proof #1] Hello Ada"  # the audience's first recipient
        assert "who=ada%40example.com" in sample_html

        # The proof's unsubscribe link names no recipient: it unsubscribes nobody.
        unsubscribe = bob_html.split('<a href="')[-1].split('"')[0]
        assert "/u/" in unsubscribe
        async with httpx.AsyncClient() as http:
            assert (await http.post(unsubscribe)).status_code == 404

        refused = (
            await api.gql(
                SEND_PROOF,
                {"id": delivery_id, "i": {"addresses": ["nobody@example.org"]}},
                as_="preparer",
            )
        )["sendProof"]
        assert refused["number"] == 2 and refused["accepted"] == 0
        assert refused["recipients"][0]["outcome"] == "REFUSED"
        assert refused["recipients"][0]["detail"] == "refused by the MTA (550)"
        status = await api.gql(
            'query { addressStatus(address: "nobody@example.org") { quarantined errorCount } }'
        )
        assert status["addressStatus"] in (None, {"quarantined": False, "errorCount": 0})

        second = await api.gql(
            SEND_PROOF, {"id": delivery_id, "i": {"profileIds": [ids["Ada"]]}}, as_="starter"
        )
        assert second["sendProof"]["number"] == 3
        received = await sink.wait_for(3)
        assert parts(received[-1])[0] == "[Proof #3] Hello Ada"

        # Proofs never count: no KPI, no log, no history.
        kpis = await figures(api, delivery_id)
        assert kpis["toSend"] == 2 and kpis["processed"] == 0 and kpis["sent"] == 0
        logs = await flows.logs(api, delivery_id)
        assert sorted(log["status"] for log in logs) == ["TO_SEND", "TO_SEND"]
        history = "query($p: ID!) { profile(id: $p) { history { status } } }"
        assert (await api.gql(history, {"p": ids["Bob"]}))["profile"]["history"] == [
            {"status": "TO_SEND"}
        ]
        proofs = (await api.gql(PROOFS, {"id": delivery_id}))["delivery"]["proofs"]
        assert [(p["number"], p["accepted"]) for p in proofs] == [(3, 1), (2, 0), (1, 2)]
        trail = await api.gql(
            "query($id: ID!) { delivery(id: $id) { auditTrail { edges { node { action } } } } }",
            {"id": delivery_id},
        )
        actions = [e["node"]["action"] for e in trail["delivery"]["auditTrail"]["edges"]]
        assert actions.count("PROOF_SENT") == 3

        # The real send: Ada's message is her preview, byte for byte.
        await flows.confirm(api, delivery_id)
        received = await sink.wait_for(5)
        sent = {r.recipients[0]: r for r in received[3:]}
        assert set(sent) == {"ada@example.com", "bob@example.com"}
        subject, html, text = parts(sent["ada@example.com"])
        assert (subject, html, text.replace("\r\n", "\n")) == (
            preview["subject"],
            preview["html"],
            preview["text"],
        )
        await flows.wait_for(api, delivery_id, lambda d: d["kpis"]["processed"] == 2, timeout=15)
        kpis = await figures(api, delivery_id)
        assert (kpis["toSend"], kpis["processed"], kpis["sent"], kpis["pending"]) == (2, 2, 0, 2)
        assert (kpis["unsubscriptions"], kpis["opens"], kpis["clicks"]) == (0, 0, 0)
        assert await tracking_rows(int(delivery_id)) == []  # the preview's hits were dropped
        # Now that the message is Ada's, the same pixel is her open.
        async with httpx.AsyncClient() as http:
            assert (await http.get(pixel)).status_code == 200
        for _ in range(200):
            rows = await tracking_rows(int(delivery_id))
            if rows:
                break
            await asyncio.sleep(0.05)
        assert [(r["kind"], r["hits"]) for r in rows] == [("OPEN", 1)]

        # Once sent, no more proofs.
        error = await api.error(
            SEND_PROOF, {"id": delivery_id, "i": {"profileIds": [ids["Ada"]]}}, as_="preparer"
        )
        assert error["extensions"]["code"] == "INVALID_STATE"


async def test_proofs_refuse_the_wrong_caller_bad_recipients_and_a_confirm_without_one(
    make_server: Callable[..., Any],
) -> None:
    running: RunningServer = await make_server()
    captured = running.runtime.mta.proofs
    async for api in api_for(running):
        ids = await people(api, "Ann", "Ben")
        audience = [ids["Ann"], ids["Ben"]]
        created = await flows.create_delivery(api, audience, requireProof=True)
        delivery_id = created["id"]
        one = {"id": delivery_id, "i": {"addresses": ["qa@example.org"]}}

        async def refused(variables: dict[str, Any], as_: str = "preparer", api: Api = api) -> str:
            error = await api.error(SEND_PROOF, variables, as_=as_)
            return str(error["extensions"]["code"])

        assert await refused(one) == "INVALID_STATE"  # DRAFT: prepare it first
        await flows.prepare(api, delivery_id)

        # Who may: PREPARE_DELIVERIES or above; previews: any role.
        assert await refused(one, as_="reader") == "FORBIDDEN"
        assert await refused(one, as_="approver") == "FORBIDDEN"
        assert await refused(one, as_="") == "UNAUTHENTICATED"
        made = await api.gql(
            'mutation { createOperator(name: "gone-preparer", roles: [PREPARE_DELIVERIES])'
            " { token } }"
        )
        gone = made["createOperator"]["token"]
        await api.gql('mutation { revokeOperator(name: "gone-preparer") { name } }')
        assert await refused(one, as_=gone) == "UNAUTHENTICATED"
        view = {"id": delivery_id, "p": ids["Ann"]}
        error = await api.error(PREVIEW, view, as_="reader")
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert (await api.error(PREVIEW, view, as_=gone))["extensions"]["code"] == "UNAUTHENTICATED"
        error = await api.error(PROOFS, {"id": delivery_id}, as_="reader")
        assert error["extensions"]["code"] == "FORBIDDEN"
        missing = {"id": delivery_id, "p": "999999"}
        assert (await api.error(PREVIEW, missing))["extensions"]["code"] == "NOT_FOUND"

        # Too many, a bad address, nobody, an unknown profile: refused, nothing sent.
        many = [f"qa{i}@example.org" for i in range(20)]
        too_many = {"id": delivery_id, "i": {"addresses": many, "profileIds": [ids["Ann"]]}}
        assert await refused(too_many) == "BAD_USER_INPUT"
        bad = {"id": delivery_id, "i": {"addresses": ["qa@example.org", "not an address"]}}
        error = await api.error(SEND_PROOF, bad, as_="preparer")
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "'not an address' is not a valid email address" in error["message"]
        assert await refused({"id": delivery_id, "i": {}}) == "BAD_USER_INPUT"
        huge = {"id": delivery_id, "i": {"addresses": ["x" * 100_000 + "@example.org"]}}
        assert await refused(huge) == "BAD_USER_INPUT"
        unknown = {"id": delivery_id, "i": {"profileIds": ["999999"]}}
        assert await refused(unknown) == "NOT_FOUND"
        assert captured == []
        assert (await api.gql(PROOFS, {"id": delivery_id}))["delivery"] == {
            "requireProof": True,
            "proofs": [],
        }

        # requireProof: no confirm without a proof since the last edit.
        error = await api.error(
            "mutation($id: ID!) { confirmSend(deliveryId: $id) { status } }",
            {"id": delivery_id},
            as_="starter",
        )
        assert error["extensions"]["code"] == "INVALID_STATE"
        assert "requires a proof" in error["message"]
        twenty = {"id": delivery_id, "i": {"addresses": many}}
        sent = (await api.gql(SEND_PROOF, twenty, as_="preparer"))["sendProof"]
        assert sent["number"] == 1 and sent["accepted"] == 20 and len(captured) == 20
        assert {m.copy.subject for _, m in captured} == {"[Proof #1] Hello"}
        # An edit makes that proof one of something else.
        await api.gql(
            "mutation($id: ID!, $i: CreateDeliveryInput!) { updateDelivery(id: $id, input: $i)"
            " { requireProof } }",
            {
                "id": delivery_id,
                "i": {
                    "label": "Spring offer",
                    "channel": "EMAIL",
                    "subject": "Hello again",
                    "body": flows.BODY,
                    "audience": {"profileIds": audience},
                },
            },
        )
        await flows.prepare(api, delivery_id)
        error = await api.error(
            "mutation($id: ID!) { confirmSend(deliveryId: $id) { status } }",
            {"id": delivery_id},
            as_="starter",
        )
        assert "requires a proof" in error["message"]
        sent = (await api.gql(SEND_PROOF, one, as_="preparer"))["sendProof"]
        assert sent["number"] == 2 and captured[-1][1].copy.subject == "[Proof #2] Hello again"
        confirmed = await flows.confirm(api, delivery_id)
        assert confirmed["status"] == "IN_PROGRESS"
        done = await flows.wait_for(api, delivery_id, lambda d: d["kpis"]["processed"] == 2)
        assert done["kpis"]["toSend"] == 2  # 21 proof messages, none of them counted

        # SMS: previewed as text; proofs are by email only.
        phone = await api.gql(
            'mutation { importProfiles(profiles: [{phone: "+33612345678", firstName: "Dee"}])'
            " { profiles { id } } }"
        )
        dee = phone["importProfiles"]["profiles"][0]["id"]
        sms = await flows.create_delivery(
            api, [dee], channel="SMS", subject=None, body="Hi {{firstName}}"
        )
        view = {"id": sms["id"], "p": dee}
        assert (await api.gql(PREVIEW, view, as_="preparer"))["previewDelivery"] == {
            "subject": None,
            "html": None,
            "text": "Hi Dee",
        }
        await flows.prepare(api, sms["id"])
        error = await api.error(
            SEND_PROOF, {"id": sms["id"], "i": {"addresses": ["qa@example.org"]}}, as_="preparer"
        )
        assert error["extensions"]["code"] == "INVALID_STATE"
        assert "proofs are sent by email" in error["message"]

        # An operator sends at most 30 proofs an hour (2 so far); others are not held back.
        again = await flows.create_delivery(api, [ids["Ann"]])
        await flows.prepare(api, again["id"])
        more = {"id": again["id"], "i": {"addresses": ["qa@example.org"]}}
        for _ in range(28):
            await api.gql(SEND_PROOF, more, as_="preparer")
        error = await api.error(SEND_PROOF, more, as_="preparer")
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "at most 30 proofs an hour" in error["message"]
        assert (await api.gql(SEND_PROOF, more, as_="starter"))["sendProof"]["number"] == 29


async def test_a_proof_the_mta_never_got_is_recorded_as_not_sent_and_does_not_count(
    make_server: Callable[..., Any],
) -> None:
    """Nothing listens on the relay's port: the proof is recorded, NOT_SENT with the plain
    cause, and requireProof still waits for one the MTA accepted."""
    running: RunningServer = await make_server(mta_url=f"smtp://127.0.0.1:{free_port()}?timeout=5")
    async for api in api_for(running):
        ids = await people(api, "Cy")
        created = await flows.create_delivery(api, [ids["Cy"]], requireProof=True)
        await flows.prepare(api, created["id"])
        variables = {"id": created["id"], "i": {"addresses": ["qa@example.org", "qb@example.org"]}}
        proof = (await api.gql(SEND_PROOF, variables, as_="preparer"))["sendProof"]
        assert proof["accepted"] == 0
        assert [(r["outcome"], r["detail"]) for r in proof["recipients"]] == [
            ("NOT_SENT", "connection refused"),
            ("NOT_SENT", "connection refused"),
        ]
        assert (await api.gql(PROOFS, {"id": created["id"]}))["delivery"]["proofs"] == [
            {"number": 1, "sentBy": proof["sentBy"], "accepted": 0}
        ]
        error = await api.error(
            "mutation($id: ID!) { confirmSend(deliveryId: $id) { status } }",
            {"id": created["id"]},
            as_="starter",
        )
        assert "requires a proof" in error["message"]
