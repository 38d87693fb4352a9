"""The WSGI app for any WSGI server: ``publisher.web.wsgi:app``.

It reads the config file that ``PUBLISHER_CONFIG`` names (default:
``config.yaml`` in the working directory) and the signing key from the
environment variable ``web.secret_key_env`` names, as ``publisher serve``
does; for example ``gunicorn 'publisher.web.wsgi:app'`` or
``waitress-serve publisher.web.wsgi:app``.
"""

from __future__ import annotations

import os

from ..config import DEFAULT_CONFIG, load_settings
from .app import public_app

#: the environment variable naming the config file (the CLI's --config reads it too)
CONFIG_ENV = "PUBLISHER_CONFIG"

app = public_app(load_settings(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG))
