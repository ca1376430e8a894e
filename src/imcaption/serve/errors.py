"""The service's refusals and failures: `ServiceError`, raised wherever a request is refused, and the JSON answer
every one of them gets, `{"error": {"code": ..., "message": ...}}`, with the status and headers it names."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from imcaption.serve.batcher import DeadlineExceeded, Overloaded

__all__ = ["ServiceError", "error_response", "overloaded_error"]


class ServiceError(Exception):
    """A refusal (or a failure) of one request: answered as JSON with `status`, `code`, `message` and `headers`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer of a refusal or a failure."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def overloaded_error(err: Overloaded) -> ServiceError:
    """A 503 with Retry-After for a request refused at capacity or past its deadline."""
    code = "deadline_exceeded" if isinstance(err, DeadlineExceeded) else "overloaded"
    return ServiceError(503, code, str(err), {"Retry-After": str(err.retry_after)})
