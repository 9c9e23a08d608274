"""Zendesk Support: the system of record for tickets and the people who open them."""
