"""Revisions of the flag store schema, oldest first by number."""
