"""Cases: one obligation of one client for one period, with its due date and status."""
