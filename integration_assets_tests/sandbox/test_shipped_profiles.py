"""The fault profiles shipped under data/faults load, and do what their comments promise."""

from pathlib import Path

import pytest

from integration_assets_tests.testing import PROJECT
from integration_sandbox.faults import load_profile

FAULTS = PROJECT / "data" / "faults"


@pytest.mark.parametrize("path", sorted(FAULTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_profile_loads(path: Path) -> None:
    profile = load_profile(str(path))
    settings = [profile.for_vendor(v) for v in ("hubspot", "stripe", "zendesk")]
    assert any(s.rates or s.rate_limit or s.drift for s in settings), f"{path.name} changes nothing"


def test_bad_day_fails_one_request_in_five() -> None:
    rates = load_profile(str(FAULTS / "bad_day.yaml")).for_vendor("stripe").rates
    assert sum(rates.values()) == pytest.approx(0.20)
