"""The digest out: what goes in it (``digest``), its window (``window``),
rendering (Jinja2 + premailer, once per edition), the message compiler
(``message``), the one compose path (``compose``), runs and their deliveries
(``runs``), the send loop (``send``) with its turns at the store (``claims``),
its book of answers (``ledger``), the senders sharing a run (``senders``), its
rate limit (``ratelimit``), report (``report``), dry run (``plan``) and test
send (``testsend``), and SMTP (``transport``, ``smtp``, ``signing``).

May import ``content`` (public values), ``audience`` (``Recipient`` and link
tokens), the store, ``config``, ``errors``, ``files``, ``addresses`` and
``urls``; never ``feeds`` or ``web``.
"""
