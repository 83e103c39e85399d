"""The REST API: one handler module per resource (see docs/api.md)."""
