"""The web side: the feed folder over HTTP, the subscription pages and the
staff preview of the digest.

May import every family; no family imports ``web``. The feed and
subscription pages never load the send loop.
"""
