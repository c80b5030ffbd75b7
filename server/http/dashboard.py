"""The live Deployment dashboard at `/`: one static page (no build step) that talks to `/graphql`.

`GET /` serves web/dashboard/index.html; `/dashboard/NAME` serves the page's own files from that
folder (plain files directly in it, by suffix; never a sub-folder or a path that leaves it), and
`/dashboard/vendor/NAME` the few npm bundles on VENDOR (the official `graphql-ws` client, the same
pinned UMD build GraphiQL loads: no protocol code of our own to keep in step with the server). Every
response carries a strict Content-Security-Policy: scripts and styles from this server only (no
inline script), connections to this server and its WebSocket only. The files are small and
unversioned, so browsers revalidate them on each load (`no-cache`, then a 304 while the ETag
matches: server/http/static.py) instead of running a stale page after an upgrade.
"""

from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from server.http.graphiql import assets_dir
from server.http.static import Folder
from server.settings import Settings

PAGE_DIR = Path(__file__).resolve().parent.parent.parent / "web" / "dashboard"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# URL name under /dashboard/vendor/ -> file in the npm install folder (`npm ci --prefix web`).
VENDOR: dict[str, str] = {"graphql-ws.min.js": "graphql-ws/umd/graphql-ws.min.js"}
# Suffix -> media type: the only kinds of file the dashboard folder serves.
MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"error": f"not found: {what}"}, status_code=404, headers=HEADERS)


def _not_installed(name: str) -> JSONResponse:
    return JSONResponse(
        {"error": f"not installed: {name} (run `npm ci --prefix web`)"},
        status_code=404,
        headers=HEADERS,
    )


def allowed(name: str) -> bool:
    """Only a file directly in the folder, with a known suffix: a name with a slash, a dot-file
    or another suffix is never looked up."""
    return not ("/" in name or "\\" in name or name.startswith(".")) and Path(name).suffix in MEDIA


class Dashboard:
    def __init__(self, settings: Settings, folder: Path = PAGE_DIR) -> None:
        self.settings = settings
        self.files = Folder(folder, headers=HEADERS, media=MEDIA, not_found=_not_found)
        # The vendor paths come from VENDOR only, never from the request: npm may link them.
        self.vendor_files = Folder(
            assets_dir(settings),
            headers=HEADERS,
            media=MEDIA,
            not_found=_not_installed,
            follow_symlink=True,
        )
        self.routes: list[BaseRoute] = [
            Route("/", self.index, methods=["GET", "HEAD"]),
            Route("/dashboard/vendor/{name}", self.vendor, methods=["GET", "HEAD"]),
            Route("/dashboard/{name:path}", self.asset, methods=["GET", "HEAD"]),
        ]

    async def index(self, request: Request) -> Response:
        return await self.files.response(request, "index.html")

    async def asset(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        return await self.files.response(request, name) if allowed(name) else _not_found(name)

    async def vendor(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        path = VENDOR.get(name)
        return await self.vendor_files.response(request, path) if path else _not_found(name)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
