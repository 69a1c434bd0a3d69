"""Email: the SMTP connection settings, messages composed from ``templates/mail/`` and the
sender that drains the durable queue (``engine.store.mail_queue``) in the worker process."""
