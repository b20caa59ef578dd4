"""Who is told what and when: reminders to clients, digests and notices to staff (e-mail)."""
