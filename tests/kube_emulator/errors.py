"""API errors rendered as Kubernetes ``Status`` objects (the shape clients such as kopf parse)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed API call: HTTP code, Status ``reason`` and a message that names the field or object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def not_found(cls, kind: str, name: str, group: str = "") -> ApiError:
        plural = kind
        what = f"{plural}.{group}" if group else plural
        return cls(404, "NotFound", f'{what} "{name}" not found', {"name": name, "group": group, "kind": kind})

    @classmethod
    def already_exists(cls, kind: str, name: str, group: str = "") -> ApiError:
        what = f"{kind}.{group}" if group else kind
        return cls(
            409, "AlreadyExists", f'{what} "{name}" already exists', {"name": name, "group": group, "kind": kind}
        )

    @classmethod
    def conflict(cls, kind: str, name: str, why: str, group: str = "") -> ApiError:
        what = f"{kind}.{group}" if group else kind
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {what} "{name}": {why}',
            {"name": name, "group": group, "kind": kind},
        )

    @classmethod
    def invalid(cls, kind: str, name: str, causes: list[tuple[str, str]], group: str = "") -> ApiError:
        """422 with one cause per offending field, like the API server's field.ErrorList."""
        what = f"{kind}.{group}" if group else kind
        summary = "; ".join(message for _, message in causes)
        return cls(
            422,
            "Invalid",
            f'{what} "{name}" is invalid: {summary}',
            {
                "name": name,
                "group": group,
                "kind": kind,
                "causes": [
                    {"reason": "FieldValueInvalid", "field": field, "message": message} for field, message in causes
                ],
            },
        )

    @classmethod
    def gone(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)

    @classmethod
    def unsupported_media_type(cls, message: str) -> ApiError:
        return cls(415, "UnsupportedMediaType", message)

    @classmethod
    def method_not_allowed(cls, message: str) -> ApiError:
        return cls(405, "MethodNotAllowed", message)
