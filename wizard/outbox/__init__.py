"""The durable outbox: follow-up emails are written to the database first,
then delivered by workers that claim them with a lease, retry temporary
failures with backoff, and never lose one when a worker or server dies."""
