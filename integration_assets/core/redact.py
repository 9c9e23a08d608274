"""Secrets and personal data never reach logs, tables or the UI: everything passes through here first."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
    (re.compile(r"\b([sr]k_(?:test|live)_)[A-Za-z0-9]+"), r"\1***"),
    (re.compile(r"\bpat-[A-Za-z0-9-]+"), "pat-***"),
    (
        re.compile(r"(?i)\b(token|api_key|access_token|refresh_token|client_secret|password)=([^&\s]+)"),
        r"\1=***",
    ),
    (re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b"), r"\1***@\2"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Masks the given secret values, credentials in common shapes, and email addresses."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
