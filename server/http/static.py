"""Files from a folder, through Starlette's `StaticFiles`: an ETag and a Last-Modified date on
every file, `304 Not Modified` when the browser's copy is current, HEAD and byte ranges, and no
path that leaves the folder. The dashboard and GraphiQL keep their own allow-lists: they ask
for a file only once its URL name is on their list."""

from collections.abc import Callable, Mapping
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles


class Folder:
    """One folder's files, each answered with `headers` and the media type of its suffix."""

    def __init__(
        self,
        directory: Path,
        *,
        headers: Mapping[str, str],
        media: Mapping[str, str],
        not_found: Callable[[str], Response],
        follow_symlink: bool = False,
    ) -> None:
        # check_dir=False: a missing folder (GraphiQL's npm install) is a 404 that says why.
        self.files = StaticFiles(
            directory=directory, check_dir=False, follow_symlink=follow_symlink
        )
        self.headers, self.media, self.not_found = headers, media, not_found

    async def response(self, request: Request, path: str) -> Response:
        """The file at `path` (relative, and already allowed by the caller), or not_found(path)."""
        try:
            response = await self.files.get_response(path, request.scope)
        except HTTPException as error:
            if error.status_code != 404:
                raise
            return self.not_found(path)
        response.headers.update(self.headers)
        if response.status_code != 304:
            response.headers["content-type"] = self.media[Path(path).suffix]
        return response
