"""Submission packs: the one PDF (and upload set) a client needs to file on the portal himself."""
