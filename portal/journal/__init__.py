"""The audit journal screen for admins: filter, page and export the organisation's events."""
