"""SMTP knowledge with no Flask in it: field checks, the staged probe, sending."""
