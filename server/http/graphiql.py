"""GraphiQL at `/graphql` in a browser, served offline.

The browser loads nothing from a CDN: the GraphiQL, React, ReactDOM and graphql-ws bundles come from
`web/node_modules` (installed from the npm registry by `npm ci --prefix web`, versions pinned in
web/package-lock.json) and the page's own files from `web/graphiql`. Only the files in the
allow-lists below are served, never the folders, through server/http/static.py (ETag, 304). The
page carries a strict CSP: 'self' plus a per-request nonce, so no inline script or style runs
that the server did not write.
"""

import html
import secrets
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from server.http.static import Folder
from server.settings import Settings

WEB = Path(__file__).resolve().parents[2] / "web"
PAGE_DIR = WEB / "graphiql"
PREFIX = "/graphiql"

# URL name under /graphiql/assets/ -> file in the npm install folder (browser-ready UMD bundles).
VENDOR: dict[str, str] = {
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "graphql-ws.min.js": "graphql-ws/umd/graphql-ws.min.js",
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
}
# URL name under /graphiql/ -> file in web/graphiql (ours, no build step).
OWN: dict[str, str] = {"setup.js": "setup.js", "page.css": "page.css"}
MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

INSTALL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GraphiQL assets are not installed</title></head>
<body>
<h1>GraphiQL assets are not installed</h1>
<p>This server serves GraphiQL from its own files (no CDN), and they are missing from
<code>{folder}</code> (not found: {missing}).</p>
<p>Install them from the npm registry, at the repository root, then reload this page:</p>
<pre>npm ci --prefix web</pre>
<p>GraphQL itself works without them: POST queries and WebSocket subscriptions to
<code>/graphql</code>.</p>
</body></html>
"""


def assets_dir(settings: Settings) -> Path:
    return (
        Path(settings.graphiql_assets_dir) if settings.graphiql_assets_dir else WEB / "node_modules"
    )


def missing_assets(settings: Settings) -> list[str]:
    folder = assets_dir(settings)
    return [path for path in VENDOR.values() if not (folder / path).is_file()]


def security_headers(request: Request, nonce: str) -> dict[str, str]:
    """'self' only (plus the same host over WebSocket for subscriptions). The nonce is for the
    page's one script tag and for the <style> element GraphiQL's dialogs insert at run time."""
    host = request.url.netloc  # both schemes: behind a TLS proxy the server may only see http
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def graphiql_page(settings: Settings, request: Request) -> Response:
    """What a browser gets for GET /graphql: GraphiQL, or how to install its missing assets."""
    nonce = secrets.token_urlsafe(16)
    headers = security_headers(request, nonce)
    missing = missing_assets(settings)
    if missing:
        body = INSTALL_PAGE.format(
            folder=html.escape(str(assets_dir(settings))),
            missing=", ".join(f"<code>{html.escape(m)}</code>" for m in missing),
        )
        return HTMLResponse(body, headers=headers)
    template = (PAGE_DIR / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(template.replace("{{nonce}}", nonce), headers=headers)


ASSET_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _not_installed(path: str) -> Response:
    return JSONResponse(
        {"error": "GraphiQL asset not installed: run `npm ci --prefix web`"}, status_code=404
    )


def _folder(directory: Path, *, follow_symlink: bool = False) -> Folder:
    return Folder(
        directory,
        headers=ASSET_HEADERS,
        media=MEDIA,
        not_found=_not_installed,
        follow_symlink=follow_symlink,
    )


class GraphiQL:
    """Routes for the allow-listed asset files; the page itself is GET /graphql (graphql_app).
    None in production mode: GraphiQL is off there, page and assets alike (404)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The vendor paths come from VENDOR only, never from the request: npm may link them.
        self.vendor_files = _folder(assets_dir(settings), follow_symlink=True)
        self.own_files = _folder(PAGE_DIR)
        self.routes: list[BaseRoute] = (
            []
            if settings.production
            else [
                Route(PREFIX + "/assets/{name}", self.vendor, methods=["GET"]),
                Route(PREFIX + "/{name}", self.own, methods=["GET"]),
            ]
        )

    async def vendor(self, request: Request) -> Response:
        path = VENDOR.get(request.path_params["name"])
        if path is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return await self.vendor_files.response(request, path)

    async def own(self, request: Request) -> Response:
        path = OWN.get(request.path_params["name"])
        if path is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return await self.own_files.response(request, path)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
