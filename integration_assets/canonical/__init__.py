"""The canonical model: validated, normalized, resolved records, and the review queue for the rest."""
