"""Mapping vendor records onto the canonical model: value normalizers first (see `normalize`)."""
