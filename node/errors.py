"""Errors the node reports to its API callers.

``ApiError`` is raised by the runtime and the application's routes alike; the
HTTP layer (``node.api``) turns it into ``{"error": code, "message": text}``
with its status.  It lives here, below both, so neither imports the other.
"""

from __future__ import annotations


class ApiError(Exception):
    """A request the node refuses: an HTTP status, a machine-readable code and a sentence."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
