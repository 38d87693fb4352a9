"""The digest out: what goes in it (``digest``), its window (``window``),
rendering (Jinja2 + premailer, once per edition), the message compiler
(``message``), the one compose path (``compose``), the send loop (``send``)
and SMTP (``smtp``).

May import ``content`` (public values), ``audience`` (``Recipient`` and link
tokens), the store, ``config``, ``errors``, ``files``, ``addresses`` and
``urls``; never ``feeds`` or ``web``.
"""
