"""The explorer: web pages every node serves at ``/ui/`` for operators, pharmacists, patients and regulators.

The pages are static files (HTML, ES modules, CSS) built on the node's own
HTTP API and its event streams: nothing is built before they run, and no
page needs anything but this node.  ``routes`` serves them: ``/ui`` redirects
to ``/ui/``, ``/ui/`` is the network page, ``/ui/{path}`` a file of
``static/``.  Every answer carries a content security policy that lets a page
load only this node's own files and talk only to this node.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def static_file(relative: str) -> Path:
    """The file of ``static/`` that ``relative`` names; 404 (``not-found``) for anything else."""
    name = relative or "index.html"
    parts = name.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts) or "\\" in name:
        raise web.HTTPNotFound(text=f"no explorer page {relative[:80]!r}")
    path = STATIC.joinpath(*parts)
    if path.suffix not in CONTENT_TYPES or not path.is_file() or STATIC not in path.resolve().parents:
        raise web.HTTPNotFound(text=f"no explorer page {relative[:80]!r}")
    return path


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/ui/")


async def _page(request: web.Request) -> web.StreamResponse:
    path = static_file(request.match_info["path"])
    return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPES[path.suffix], **SECURITY_HEADERS})


def routes() -> list[web.RouteDef]:
    return [web.get("/ui", _redirect), web.get("/ui/{path:.*}", _page)]
