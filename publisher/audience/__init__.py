"""The audience: who gets the digest, and what they chose.

Owns subscribers (adding, unsubscribing, topics), the signed tokens of their
links, and :class:`~publisher.audience.recipients.Recipient`, the value the
mail family addresses a message to. May import the store (``models``,
``queries``, ``db``), ``addresses``, ``config`` and ``errors``; never ``mail``,
``feeds`` or ``web``.
"""
