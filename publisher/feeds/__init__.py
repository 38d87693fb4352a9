"""Feeds out: the feed model and its formats (feedgen), entries, build planning,
the build shell, the manifest and WebSub pings.

May import ``content`` (its public values and HTML helpers), the store,
``config``, ``errors``, ``files`` and ``urls``; never ``mail``, ``audience`` or
``web``. ``model``, ``entries`` and ``plan`` are pure; ``build`` is the shell.
"""
