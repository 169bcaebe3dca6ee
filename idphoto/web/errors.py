"""Every failure of the web app as a one-line JSON ``{"error": …}`` with its status."""
from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": single_line(message)}, status_code=status, headers=headers)


def single_line(text: str) -> str:
    return " ".join(str(text).split()) or "error"
