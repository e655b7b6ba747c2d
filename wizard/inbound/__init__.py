"""Mail that comes back: replies, auto-replies and bounces (no Flask).

``parse`` reads one raw message into a ``ParsedEmail`` (``parsed``): what
kind it is, who wrote, which email of ours it answers, the new text without
the quoted history, and for a bounce the machine-readable delivery status.
``ingest`` matches it to a conversation and stores it once; the inbound
SMTP server (``smtp_server``) and the IMAP fetcher (``imap``) feed it.
"""
