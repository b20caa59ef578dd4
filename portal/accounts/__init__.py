"""Organisations (the tenants) and their staff accounts."""
