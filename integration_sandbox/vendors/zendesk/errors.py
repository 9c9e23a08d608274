"""Zendesk's error bodies: `{"error", "description"}`, with `details` per field for invalid records."""

from __future__ import annotations

from integration_sandbox.kit import VendorError

UNAUTHENTICATED = {"error": "Couldn't authenticate you"}
INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons.",
}
FORBIDDEN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. Please contact the account owner of this help desk "
    "for further help.",
}
NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}
# Zendesk's document declares its 429 body as `Errors` (Update Organization's endpoint limit is the one it
# spells out); its rate-limit guide names only the status and Retry-After, so the body follows the document.
RATE_LIMITED = {
    "errors": [
        {
            "code": "TooManyRequests",
            "title": "Too Many Requests",
            "status": "429",
            "detail": "Number of allowed API requests per minute exceeded",
        }
    ]
}


def invalid_value(description: str) -> VendorError:
    return VendorError(400, {"error": "InvalidValue", "description": description})


def invalid_paging(description: str) -> VendorError:
    return VendorError(400, {"error": "InvalidPaginationParameter", "description": description})


def record_invalid(details: dict[str, list[dict[str, str]]]) -> VendorError:
    return VendorError(422, {"error": "RecordInvalid", "description": "Record validation errors", "details": details})


def problem(field: str, description: str, error: str) -> dict[str, list[dict[str, str]]]:
    return {field: [{"description": description, "error": error}]}
