"""The wizard's own logic: drafts, connection targets, tests and saving, progress."""
