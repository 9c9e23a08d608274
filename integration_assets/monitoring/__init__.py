"""Watching the integration: data checks, connector health, sensors and alerts."""
