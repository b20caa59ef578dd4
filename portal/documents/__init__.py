"""Documents and upload links: screening, normalising, storing, the public upload page."""
