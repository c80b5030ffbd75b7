"""The dashboard's and GraphiQL's files: revalidated with an ETag (a 304 while it matches), with
their headers kept, and nothing outside the allow-lists (docs/dashboard.md, docs/graphiql.md).

No storage is involved: these run on SQLite only.
"""

import httpx
import pytest

from server.http.dashboard import CSP
from server.http.graphiql import VENDOR, missing_assets
from server.settings import Settings
from tests.support.server import RunningServer

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)


async def revalidated(http: httpx.AsyncClient, path: str) -> tuple[httpx.Response, httpx.Response]:
    """The first answer, and the answer to a request that sends back its ETag."""
    first = await http.get(path)
    assert first.status_code == 200, path
    assert first.headers["etag"] and first.headers["last-modified"]
    again = await http.get(path, headers={"if-none-match": first.headers["etag"]})
    return first, again


async def test_dashboard_files_answer_304_while_the_browser_copy_is_current(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for path, media in (("/", "text/html"), ("/dashboard/app.js", "text/javascript")):
            first, again = await revalidated(http, path)
            assert first.headers["content-type"].startswith(media)
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == first.headers["etag"]
            for response in (first, again):
                assert response.headers["content-security-policy"] == CSP
                assert response.headers["cache-control"] == "no-cache"
            other = await http.get(path, headers={"if-none-match": '"another-version"'})
            assert other.status_code == 200 and other.content == first.content
        head = await http.head("/dashboard/style.css")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "text/css; charset=utf-8"


async def test_dashboard_serves_only_plain_files_of_its_folder(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        if not missing_assets(Settings()):  # the graphql-ws client, from the npm install
            first, again = await revalidated(http, "/dashboard/vendor/graphql-ws.min.js")
            assert first.headers["content-type"].startswith("text/javascript")
            assert b"graphqlWs" in first.content and again.status_code == 304
            assert first.headers["content-security-policy"] == CSP
        for name in ("vendor/react.production.min.js", "vendor/..%2Fpackage.json"):
            assert (await http.get(f"/dashboard/{name}")).status_code == 404, name
        for name in ("..%2Fpyproject.toml", ".hidden.js", "app.py", "nope.js", "sub/app.js"):
            response = await http.get(f"/dashboard/{name}")
            assert response.status_code == 404, name
            assert response.json()["error"].startswith("not found: "), name
            assert response.headers["content-security-policy"] == CSP


async def test_graphiql_files_answer_304_and_only_the_allow_listed_ones_exist(
    server: RunningServer,
) -> None:
    paths = ["/graphiql/setup.js", "/graphiql/page.css"]
    if not missing_assets(Settings()):
        paths += [f"/graphiql/assets/{name}" for name in VENDOR]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for path in paths:
            first, again = await revalidated(http, path)
            assert again.status_code == 304 and again.content == b"", path
            for response in (first, again):
                assert response.headers["cache-control"] == "no-cache"
                assert response.headers["x-content-type-options"] == "nosniff"
        for outside in (
            "/graphiql/index.html",
            "/graphiql/assets/package.json",
            "/graphiql/assets/react%2Fpackage.json",
            "/graphiql/..%2F..%2Fpyproject.toml",
        ):
            assert (await http.get(outside)).status_code == 404, outside
