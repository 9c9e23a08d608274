"""When keys and tokens expire: a warning some days before the date in config, an error once it has passed.

Vendors do not say when a private-app token or an API key expires, so the date is configuration
(`credentials.expires_on` in monitoring.yaml), set when the key is issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from integration_assets.core.monitoring_config import Credentials
from integration_assets.mapping.schema import VENDORS

__all__ = ["CredentialStatus", "credential_statuses"]


@dataclass(frozen=True)
class CredentialStatus:
    system: str
    expires_on: date
    days_left: int  # 0 on the day it expires: by then it may already be refused
    warn_days: int

    @property
    def expired(self) -> bool:
        return self.days_left <= 0

    @property
    def expiring(self) -> bool:
        return not self.expired and self.days_left <= self.warn_days

    @property
    def state(self) -> str:
        return "expired" if self.expired else "expiring" if self.expiring else "valid"

    def as_record(self) -> dict[str, object]:
        return {
            "id": self.system,
            "vendor": VENDORS.get(self.system, self.system),
            "expires_on": self.expires_on.isoformat(),
            "days_left": self.days_left,
            "warn_days": self.warn_days,
            "state": self.state,
        }


def credential_statuses(config: Credentials, today: date) -> list[CredentialStatus]:
    return [
        CredentialStatus(system, expires_on, (expires_on - today).days, config.warn_days)
        for system, expires_on in sorted(config.expires_on.items())
    ]
