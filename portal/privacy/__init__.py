"""Personal data: a client's export and erasure, retention, and objects waiting to be deleted."""
