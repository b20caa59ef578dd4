"""The procedure catalog and the checklist items each case asks for."""
