"""What the normalizer tests share: the Hypothesis budget and a result's reason code."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from integration_assets.mapping.normalize import Rejected

__all__ = ["FAST", "reason"]

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reason(result: object) -> str | None:
    return result.reason_code if isinstance(result, Rejected) else None
