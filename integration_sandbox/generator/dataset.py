"""Writes one dataset: the families one at a time, straight into the nine open files, then the manifest."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from integration_sandbox.generator.billing import Billing
from integration_sandbox.generator.crm import Crm
from integration_sandbox.generator.defects import NEEDS_ORG, DefectPlanter
from integration_sandbox.generator.family import Family
from integration_sandbox.generator.formats import ANCHOR, FILES, ArrayWriter
from integration_sandbox.generator.support import Support
from integration_sandbox.generator.vocabulary import NAME_SPACE


class _Dataset:
    """One run of `generate`: the seeds, the open files and the three systems' builders."""

    def __init__(self, out: Path, seed: int, scale: int, defect_rate: float) -> None:
        self.out, self.seed, self.scale, self.defect_rate = out, seed, scale, defect_rate
        self.seed_key = (seed & 0xFFFF_FFFF_FFFF_FFFF) << 40
        setup = random.Random(f"integration-assets/{seed}/setup")
        self.name_offset = setup.randrange(NAME_SPACE)
        prefix_offset = setup.randrange(36**8)
        self.w: dict[str, ArrayWriter] = {}
        self.planter = DefectPlanter(seed, scale, defect_rate)
        self.crm = Crm(self.w, self.planter)
        self.billing = Billing(self.w, self.planter, prefix_offset)
        self.support = Support(self.w, self.planter)

    def run(self) -> dict[str, Any]:
        for system in ("hubspot", "stripe", "zendesk"):
            (self.out / system).mkdir(parents=True, exist_ok=True)
        manifest_path = self.out / "manifest.json"
        if manifest_path.exists():  # a crash must not leave an old manifest beside new data
            manifest_path.unlink()
        try:
            for name in FILES:
                self.w[name] = ArrayWriter(self.out / f"{name}.json")
            self.support.add_agents(self.seed, self.scale)
            for index, (kind, occurrence) in enumerate(self.planter.plan()):
                self._family(index, kind, occurrence)
        finally:
            for writer in self.w.values():
                writer.close()
        manifest = {
            "seed": self.seed,
            "scale": self.scale,
            "defect_rate": float(self.defect_rate),
            "anchor": ANCHOR,
            "counts": {name: self.w[name].count for name in FILES},
            "archived": {"hubspot/contacts": self.crm.archived},
            "defects": self.planter.defects,
        }
        tmp = manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, manifest_path)
        return manifest

    def _family(self, index: int, kind: str | None, occurrence: int) -> None:
        """One family from its own generator: the CRM side first, then billing and support, which follow it."""
        r = random.Random(self.seed_key | index)
        family = Family.draw(r, index, kind, occurrence, self.name_offset)
        self.crm.build(r, family)
        x = r.random()
        if family.won or x < 0.10 or kind == "charge_for_missing_invoice":
            self.billing.account(r, family)
        if kind == "ambiguous_owner":
            self.billing.unowned_customer(r, family)
        x = r.random()
        if x < 0.70 or kind in NEEDS_ORG:
            self.support.organization(r, family)


def generate(out_dir: str | Path, *, seed: int = 0, scale: int = 100, defect_rate: float = 0.0) -> dict:
    """Writes the dataset and manifest.json; returns the manifest dict.

    Same (seed, scale, defect_rate) gives byte-identical files. `scale` is the number of CRM companies
    (about 11 records each across the nine files); `defect_rate` the share of families given one planted
    defect (at least one of each kind of `DEFECT_KINDS` when the rate is positive and scale >= 30).
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not 0 <= defect_rate <= 1:
        raise ValueError(f"defect_rate must be between 0 and 1, got {defect_rate!r}")
    return _Dataset(Path(out_dir), seed, scale, defect_rate).run()
