"""Opens and clicks over real HTTP: the pixel, the click redirect (and the redirects it must never
make), batched recording, the flush on a graceful stop, and the open rate / CTR (SPEC §5, §7).

Tracking ids are built with make_token and the server's own key for logs of a delivery sent with
the capture MTA: that is the id format the SMTP adapter writes into emails.
"""

import asyncio
import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate

from models.sql import Sql, parse_ts
from models.tracking import (
    Hit,
    Tally,
    Token,
    TokenKind,
    TrackingKind,
    count_opens_and_clicks,
    make_token,
    record_hits,
    tracking_counts,
)
from server.db import apply_migrations, tortoise_config
from server.http.tracking import Recorder
from tests.support import clock, flows
from tests.support.client import Api
from tests.support.databases import fresh_database
from tests.support.server import RunningServer, api_for
from tests.support.tracking import BODY, path, sent, stored, until_stored

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


async def raw_get(running: RunningServer, target: str) -> tuple[int, dict[str, str]]:
    """A GET with the request target sent byte for byte (httpx would normalise `..`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode("latin-1")
    )
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(head[0].split()[1]), headers


async def compute_stats(api: Api, delivery_id: int) -> dict[str, Any]:
    data = await api.gql(
        "mutation($id: ID!) { computeStats(deliveryId: $id) { opens clicks openRate"
        " clickThroughRate sent } }",
        {"id": str(delivery_id)},
    )
    return data["computeStats"]  # type: ignore[no-any-return]


async def test_the_pixel_is_always_the_same_gif_and_only_valid_ids_record_an_open(
    server: RunningServer, api: Api
) -> None:
    delivery_id, logs = await sent(api, 2)
    other_id, other_logs = await sent(api, 1)
    valid = path(server, Token(TokenKind.OPEN, delivery_id, logs[0]))
    numbers, signature = valid.rsplit(".", 1)
    invalid = [
        "/t/o/nothing",
        "/t/o/1.2.AAAAAAAAAAAAAAAAAAAAAA",
        f"{numbers}.{signature[::-1]}",  # tampered signature
        f"/t/o/{delivery_id}.{logs[1]}.{signature}",  # another recipient, same signature
        path(server, Token(TokenKind.CLICK, delivery_id, logs[0], 0)).replace("/t/c/", "/t/o/"),
        path(server, Token(TokenKind.UNSUBSCRIBE, delivery_id, logs[0])).replace("/u/", "/t/o/"),
        "/t/o/99999999999999999.1." + signature,
        # Signed, but the log is not in that delivery, or does not exist: dropped at insert.
        path(server, Token(TokenKind.OPEN, delivery_id, other_logs[0])),
        path(server, Token(TokenKind.OPEN, delivery_id, 2_000_000_000)),
    ]
    async with httpx.AsyncClient(base_url=server.base_url, follow_redirects=False) as http:
        for target in [*invalid, valid]:
            response = await http.get(target)
            assert response.status_code == 200, target
            assert response.content == GIF and len(GIF) == 43
            assert response.headers["content-type"] == "image/gif"
            assert "no-store" in response.headers["cache-control"]
            assert "no-cache" in response.headers["cache-control"]
            assert response.headers["pragma"] == "no-cache"
            assert "location" not in response.headers
        assert (await http.head(valid)).status_code == 200  # a HEAD probe records nothing
    # Hits are stored in arrival order, so once the valid open is in, nothing else is coming.
    await until_stored(delivery_id, {TrackingKind.OPEN: 1, TrackingKind.CLICK: 0})
    assert await stored(other_id) == {TrackingKind.OPEN: 0, TrackingKind.CLICK: 0}


async def test_many_opens_are_written_in_batches_and_each_recipient_counts_once(
    make_server: Callable[..., Any],
) -> None:
    running = await make_server(tracking_batch_size=50, tracking_flush_seconds=0.1)
    async for api in api_for(running):
        delivery_id, logs = await sent(api, 150)
        targets = [path(running, Token(TokenKind.OPEN, delivery_id, log)) for log in logs] * 2
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=running.base_url, limits=limits) as http:
            responses = await asyncio.gather(*(http.get(t) for t in targets))
        assert {r.status_code for r in responses} == {200}
        await until_stored(delivery_id, {TrackingKind.OPEN: 300, TrackingKind.CLICK: 0})
        kpis = await compute_stats(api, delivery_id)
        assert (kpis["opens"], kpis["clicks"], kpis["openRate"]) == (150, 0, 100.0)


async def test_opens_and_clicks_reach_the_kpis_on_the_refresh_interval_by_themselves(
    make_server: Callable[..., Any],
) -> None:
    """Two opens and a click of one recipient count once each; a click alone proves an open."""
    running = await make_server(stats_refresh_seconds=0.2)
    async for api in api_for(running):
        delivery_id, (a, b, c, _d) = await sent(api, 4)
        hits = [
            Token(TokenKind.OPEN, delivery_id, a),
            Token(TokenKind.OPEN, delivery_id, a),
            Token(TokenKind.CLICK, delivery_id, a, 1),
            Token(TokenKind.CLICK, delivery_id, b, 0),
            Token(TokenKind.OPEN, delivery_id, c),
        ]
        async with httpx.AsyncClient(base_url=running.base_url) as http:
            for token in hits:
                assert (await http.get(path(running, token))).status_code in (200, 302)
        done = await flows.wait_for(
            api, str(delivery_id), lambda d: d["kpis"]["clicks"] == 2 and d["kpis"]["opens"] == 3
        )
        kpis = done["kpis"]
        assert (kpis["openRate"], kpis["clickThroughRate"]) == (75.0, 50.0)  # of 4 sent
        assert await stored(delivery_id) == {TrackingKind.OPEN: 3, TrackingKind.CLICK: 2}


async def test_opens_of_a_finished_delivery_still_reach_its_kpis_on_the_refresh(
    make_server: Callable[..., Any],
) -> None:
    """Recipients open old emails: the refresh covers deliveries whose validity period ended."""
    running = await make_server(stats_refresh_seconds=0.2)
    async for api in api_for(running):
        emails = ["a@example.com", "b@example.com"]
        done, logs = await flows.sent_delivery(
            api, emails, body=BODY, validityPeriod=clock.VALIDITY
        )
        delivery_id = int(done["id"])
        await clock.finished(api, str(delivery_id))
        async with httpx.AsyncClient(base_url=running.base_url) as http:
            opened = Token(TokenKind.OPEN, delivery_id, int(logs[0]["id"]))
            await http.get(path(running, opened))
        done = await flows.wait_for(api, str(delivery_id), lambda d: d["kpis"]["opens"] == 1)
        assert done["status"] == "FINISHED"
        assert done["kpis"]["openRate"] == 50.0
        # An open whose row commits after the refresh has looked past a higher id (on
        # PostgreSQL ids are taken at insert, rows seen at commit): a lower id, written now.
        now = datetime.now(UTC)
        await Sql().execute(
            "INSERT INTO tracking_log (id, delivery_id, sending_log_id, kind, link, url, at,"
            " last_at, hits) VALUES (0, ?, ?, 'OPEN', 0, NULL, ?, ?, 1)",
            [delivery_id, int(logs[1]["id"]), now, now],
        )
        done = await flows.wait_for(api, str(delivery_id), lambda d: d["kpis"]["opens"] == 2)
        assert done["kpis"]["openRate"] == 100.0


async def test_with_a_long_refresh_interval_only_compute_stats_shows_the_opens(
    server: RunningServer, api: Api
) -> None:
    assert server.settings.stats_refresh_seconds == 3600
    delivery_id, logs = await sent(api, 3)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await http.get(path(server, Token(TokenKind.OPEN, delivery_id, logs[0])))
        await http.get(path(server, Token(TokenKind.CLICK, delivery_id, logs[1], 1)))
    await until_stored(delivery_id, {TrackingKind.OPEN: 1, TrackingKind.CLICK: 1})
    before = (await flows.delivery(api, str(delivery_id)))["kpis"]
    assert (before["opens"], before["clicks"]) == (0, 0)
    kpis = await compute_stats(api, delivery_id)
    assert (kpis["opens"], kpis["clicks"]) == (2, 1)
    assert (kpis["openRate"], kpis["clickThroughRate"]) == (66.67, 33.33)


async def test_a_click_redirects_to_the_delivery_own_link_filled_for_the_recipient(
    server: RunningServer, api: Api
) -> None:
    delivery_id, logs = await sent(api, 2)
    async with httpx.AsyncClient(base_url=server.base_url, follow_redirects=False) as http:
        first = await http.get(path(server, Token(TokenKind.CLICK, delivery_id, logs[0], 0)))
        plain = await http.get(path(server, Token(TokenKind.CLICK, delivery_id, logs[1], 1)))
    assert first.status_code == 302
    # Profiles were imported as firstName "F<i>", email user<i>@example.com
    # (tests/support/flows.py).
    assert first.headers["location"] == "https://example.com/offer?who=F0&e=user0%40example.com"
    assert "no-store" in first.headers["cache-control"]
    assert plain.status_code == 302
    assert plain.headers["location"] == "https://example.com/plain"
    await until_stored(delivery_id, {TrackingKind.OPEN: 0, TrackingKind.CLICK: 2})
    urls = await Sql().rows(
        "SELECT url FROM tracking_log WHERE delivery_id = ? ORDER BY url", [delivery_id]
    )
    # The link as the delivery has it: clicks group by link, and no profile data is copied.
    assert [r["url"] for r in urls] == [
        "https://example.com/offer?who={{firstName}}&e={{email}}",
        "https://example.com/plain",
    ]


async def test_a_click_never_redirects_where_the_request_says(
    server: RunningServer, api: Api
) -> None:
    delivery_id, logs = await sent(api, 2)
    key = server.settings.tracking_key
    valid = make_token(key, Token(TokenKind.CLICK, delivery_id, logs[0], 1))
    d, log, link, signature = valid.split(".")
    not_found = [
        "/t/c/?url=https://evil.example",
        "/t/c?url=https://evil.example",
        "/t/c//evil.example",
        "/t/c/%2F%2Fevil.example",
        "/t/c/%5Cevil.example",
        "/t/c/\\evil.example",
        "/t/c/https://evil.example",
        f"/t/c/{valid}/../..",
        f"/t/c/{valid}/..%2F..%2Fevil.example",
        f"/t/c/{valid}//evil.example",
        f"/t/c/{valid}%2F%2Fevil.example",
        f"/t/c/{d}.{log}.0.{signature}",  # another link index, same signature
        f"/t/c/{d}.{logs[1]}.{link}.{signature}",  # another recipient
        f"/t/c/{int(d) + 1}.{log}.{link}.{signature}",  # another delivery
        f"/t/c/{d}.{log}.{link}.{signature[:-1]}",
        f"/t/c/{d}.{log}.{signature}",  # no link index
        "/t/c/" + make_token(key, Token(TokenKind.CLICK, delivery_id, logs[0], 2)),  # no link 2
        "/t/c/" + make_token(key, Token(TokenKind.CLICK, delivery_id, 2_000_000_000, 0)),
        "/t/c/" + make_token(key, Token(TokenKind.OPEN, delivery_id, logs[0])),
        "/t/c/" + make_token(key, Token(TokenKind.UNSUBSCRIBE, delivery_id, logs[0])),
        "/t/c/" + make_token("another-key", Token(TokenKind.CLICK, delivery_id, logs[0], 1)),
    ]
    for target in not_found:
        status, headers = await raw_get(server, target)
        assert (status, headers.get("location")) == (404, None), target
    # The query string is not an input: a valid id still leads to the delivery's own link.
    status, headers = await raw_get(server, f"/t/c/{valid}?url=https://evil.example")
    assert (status, headers["location"]) == (302, "https://example.com/plain")
    assert urlsplit(headers["location"]).hostname == "example.com"
    await until_stored(delivery_id, {TrackingKind.OPEN: 0, TrackingKind.CLICK: 1})


async def test_a_deleted_delivery_has_no_redirect_left(server: RunningServer, api: Api) -> None:
    """A prepared delivery has logs (and could be clicked by someone holding an id); once it is
    deleted, its ids lead nowhere."""
    ids = await flows.import_profiles(api, ["a@example.com"])
    created = await flows.create_delivery(api, ids, body=BODY)
    await flows.prepare(api, created["id"])
    (log,) = await flows.logs(api, created["id"])
    target = path(server, Token(TokenKind.CLICK, int(created["id"]), int(log["id"]), 1))
    async with httpx.AsyncClient(base_url=server.base_url, follow_redirects=False) as http:
        assert (await http.get(target)).status_code == 302
        await api.gql("mutation($id: ID!) { deleteDelivery(id: $id) }", {"id": created["id"]})
        gone = await http.get(target)
    assert gone.status_code == 404 and "location" not in gone.headers
    assert gone.json() == {"error": "unknown or invalid tracking link"}


async def test_a_graceful_stop_stores_the_opens_still_queued(
    make_server: Callable[..., Any],
) -> None:
    """The first server would not flush on its own for an hour: only close() can store them."""
    first = await make_server(tracking_flush_seconds=3600, tracking_batch_size=100_000)
    async for api in api_for(first):
        delivery_id, logs = await sent(api, 120)
    targets = [path(first, Token(TokenKind.OPEN, delivery_id, log)) for log in logs]
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        responses = await asyncio.gather(*(http.get(t) for t in targets))
    assert {r.status_code for r in responses} == {200}
    assert await stored(delivery_id) == {TrackingKind.OPEN: 0, TrackingKind.CLICK: 0}
    await first.stop()

    second = await make_server()
    async for api in api_for(second):
        kpis = await compute_stats(api, delivery_id)
        assert (kpis["opens"], kpis["openRate"]) == (120, 100.0)


async def test_a_row_the_database_refuses_is_dropped_alone_and_a_full_queue_drops_new_hits(
    server: RunningServer, api: Api
) -> None:
    """The recorder against the server's own database: a bad row among good ones costs only
    itself, the recorder goes on, and beyond its cap of waiting keys it refuses new ones rather
    than grow (hits of a key already waiting only add to its count)."""
    delivery_id, (a, b, c) = await sent(api, 3)
    now = datetime.now(UTC)
    recorder = Recorder(flush_seconds=3600, batch_size=10, max_queued=4)
    poison = Hit(delivery_id, b, TrackingKind.OPEN, cast(Any, "not a time"))
    for hit in [Hit(delivery_id, a, TrackingKind.OPEN, now), poison]:
        recorder.add(hit)
    recorder.add(Hit(delivery_id, c, TrackingKind.OPEN, now))
    await recorder.flush()
    assert (recorder.stored, recorder.lost) == (2, 1)
    clicks = [Hit(delivery_id, a, TrackingKind.CLICK, now, link=link) for link in range(6)]
    for hit in clicks:
        recorder.add(hit)
    for _ in range(10):
        recorder.add(clicks[0])
    assert (len(recorder.queue), recorder.dropped) == (4, 2)
    await recorder.flush()
    assert await stored(delivery_id) == {TrackingKind.OPEN: 2, TrackingKind.CLICK: 14}


async def rows_of(delivery_id: int) -> list[dict[str, Any]]:
    return await Sql().rows(
        "SELECT sending_log_id, kind, link, url, hits, at, last_at FROM tracking_log"
        " WHERE delivery_id = ? ORDER BY sending_log_id, kind, link",
        [delivery_id],
    )


async def test_finding_13_repeated_opens_and_clicks_are_one_row_per_recipient_and_link(
    make_server: Callable[..., Any],
) -> None:
    """The issue's probe, smaller: 400 GETs of one recipient's pixel, 150 clicks on two links,
    in two waves flushed apart (so that the second wave updates the rows the first one wrote).
    Storage holds one row per recipient and open or link, with the count and the latest time;
    the rates and computeStats are what they were."""
    running = await make_server(tracking_batch_size=50, tracking_flush_seconds=0.05)
    async for api in api_for(running):
        delivery_id, (a, b, _c, _d) = await sent(api, 4)
        opened = path(running, Token(TokenKind.OPEN, delivery_id, a))
        first_link = path(running, Token(TokenKind.CLICK, delivery_id, a, 0))
        second_link = path(running, Token(TokenKind.CLICK, delivery_id, a, 1))
        other = path(running, Token(TokenKind.OPEN, delivery_id, b))
        wave = [opened] * 200 + [first_link] * 50 + [second_link] * 25 + [other]
        limits = httpx.Limits(max_connections=20)
        timeout = httpx.Timeout(30, pool=None)  # requests queue for the 20 connections
        async with httpx.AsyncClient(
            base_url=running.base_url, limits=limits, timeout=timeout
        ) as http:
            for n in (1, 2):
                responses = await asyncio.gather(*(http.get(t) for t in wave))
                assert {r.status_code for r in responses} == {200, 302}
                await until_stored(
                    delivery_id, {TrackingKind.OPEN: 201 * n, TrackingKind.CLICK: 75 * n}
                )
        rows = await rows_of(delivery_id)
        assert [(r["sending_log_id"], r["kind"], r["link"], r["hits"]) for r in rows] == [
            (a, "CLICK", 0, 100),
            (a, "CLICK", 1, 50),
            (a, "OPEN", 0, 400),
            (b, "OPEN", 0, 2),
        ]
        assert [r["url"] for r in rows] == [
            "https://example.com/offer?who={{firstName}}&e={{email}}",
            "https://example.com/plain",
            None,
            None,
        ]
        for row in rows:
            first, last = parse_ts(row["at"]), parse_ts(row["last_at"])
            assert first is not None and last is not None and first < last
        kpis = await compute_stats(api, delivery_id)
        assert (kpis["opens"], kpis["clicks"]) == (2, 1)
        assert (kpis["openRate"], kpis["clickThroughRate"]) == (50.0, 25.0)


async def test_finding_13_the_migration_merges_the_rows_stored_before(
    db_kind: str, tmp_path: Any
) -> None:
    """Rows written one per hit (the schema before) become one row per recipient and open or
    url, keeping every hit in the count, the first and the latest time, and the rates."""
    async with fresh_database(db_kind, tmp_path) as url:
        await migrate(config=tortoise_config(url), target="models.0004_claim_order_index")
        await Tortoise.init(config=tortoise_config(url))
        try:
            sql = Sql()
            t = [datetime(2026, 1, 1, 12, minute, tzinfo=UTC) for minute in range(6)]
            delivery_id = await old_delivery(sql, t[0])
            a, b = [await old_log(sql, delivery_id, n) for n in ("a", "b")]
            old = [
                (a, "OPEN", None, t[3]),
                (a, "OPEN", None, t[1]),
                (a, "OPEN", None, t[5]),
                (a, "CLICK", "https://x.example/1", t[2]),
                (a, "CLICK", "https://x.example/2", t[4]),
                (a, "CLICK", "https://x.example/1", t[3]),
                (b, "CLICK", "https://x.example/2", t[1]),
            ]
            for log, kind, link_url, at in old:
                await sql.execute(
                    "INSERT INTO tracking_log (delivery_id, sending_log_id, kind, url, at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [delivery_id, log, kind, link_url, sql.ts(at)],
                )
            before = await count_opens_and_clicks(sql, delivery_id)
        finally:
            await Tortoise.close_connections()
        await apply_migrations(url)
        await Tortoise.init(config=tortoise_config(url))
        try:
            sql = Sql()
            assert await count_opens_and_clicks(sql, delivery_id) == before == (2, 2)
            rows = await rows_of(delivery_id)
            keys = ("sending_log_id", "kind", "link", "url", "hits")
            got = [(*(r[k] for k in keys), parse_ts(r["at"]), parse_ts(r["last_at"])) for r in rows]
            assert got == [
                (a, "CLICK", -2, "https://x.example/2", 1, t[4], t[4]),
                (a, "CLICK", -1, "https://x.example/1", 2, t[2], t[3]),
                (a, "OPEN", 0, None, 3, t[1], t[5]),
                (b, "CLICK", -1, "https://x.example/2", 1, t[1], t[1]),
            ]
            # New hits land on the rows (an open) or beside them (a click, by link index).
            later = datetime(2026, 1, 2, tzinfo=UTC)
            hits = [Hit(delivery_id, a, TrackingKind.OPEN, later)]
            hits.append(Hit(delivery_id, a, TrackingKind.CLICK, later, "https://x.example/1", 0))
            assert await record_hits(sql, [Tally.of(hit) for hit in hits]) == 2
            counts = await tracking_counts(sql, delivery_id)
            assert counts == {TrackingKind.OPEN: 4, TrackingKind.CLICK: 5}
            assert await count_opens_and_clicks(sql, delivery_id) == (2, 2)
        finally:
            await Tortoise.close_connections()


async def old_delivery(sql: Sql, at: datetime) -> int:
    """A sent delivery as the schema of migration 0004 stores it (raw SQL: the models may have
    moved on since)."""
    zeros = ["occurrences_created", "to_send", "excluded", "processed", "sent", "pending"]
    zeros += ["failed", "opens", "clicks"]
    rows = await sql.rows(
        "INSERT INTO delivery (label, channel, body, status, feedback_mode, audience,"
        " validity_period, require_approval, figures_final, confirm_each_occurrence, warnings,"
        " created_at, updated_at, "
        + ", ".join(zeros)
        + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        + ", ".join(["?"] * len(zeros))
        + ") RETURNING id",
        ["old", "EMAIL", BODY, "SENT", "LEGACY", "{}", 3600, False, False, False, "[]"]
        + [sql.ts(at), sql.ts(at)]
        + [0] * len(zeros),
    )
    return int(rows[0]["id"])


async def old_log(sql: Sql, delivery_id: int, name: str) -> int:
    rows = await sql.rows(
        "INSERT INTO sending_log (delivery_id, address, status, excluded, retries)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        [delivery_id, f"{name}@example.com", "SENT", False, 0],
    )
    return int(rows[0]["id"])
