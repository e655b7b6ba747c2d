"""DNS checks for email deliverability, with no Flask in them.

``resolver`` wraps dnspython (a chosen nameserver or the system's),
``deliverability`` checks a sender domain's SPF, DMARC and DKIM against the
chosen provider, and ``provider_guess`` guesses the provider from an address
or a domain's MX records. The provider facts they use live in the catalogue.
"""
