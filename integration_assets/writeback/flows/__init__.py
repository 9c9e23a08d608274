"""The write-back flows, one module each: CRM → billing, billing → CRM, CRM → support."""
