"""The development mailbox: a local, strict SMTP server whose mail lands in a Maildir.

It lets the whole wizard — connection test, wrong-password guidance, the real
test email — run on a developer's machine without a provider account:

- ``certs``: a self-signed certificate that clients trust explicitly, so TLS
  verification stays on even in development;
- ``server``: ``DevMailbox`` (STARTTLS + AUTH required) and ``run_forever``
  for the CLI;
- ``store``: the Maildir the server writes and the dev inbox reads;
- ``xoauth2``: the server side of SASL XOAUTH2 (sign-in tokens), Google-style.

No Flask here: the CLI, the web app and the tests all use these directly.
"""

