"""Write-back flows into the vendors: CRM → billing, billing → CRM, CRM → support, with their sync log, outbox,
circuit breaker and replay sensor; `definitions.py` is what the code location merges."""
