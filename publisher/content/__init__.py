"""Posts in: post files (front matter + Markdown), feed import, the importer,
HTML helpers, slugs, and the values every family shares about a post.

May import the store (``models``, ``queries``, ``db``), ``config``, ``errors``,
``urls`` and ``yamlsource``; never ``feeds``, ``mail``, ``audience`` or ``web``.
The parsers (``postfile``, ``feedimport``, ``markup``, ``sanitize``, ``video``,
``html``, ``public``, ``values``) are pure; only ``importer``, ``matching`` and
``writer`` touch the store.
"""
