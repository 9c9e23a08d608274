"""Cross-system asset checks: the systems agree with each other, record by record."""
