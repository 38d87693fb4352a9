"""``publisher run``: the one long-running process that rebuilds the feeds and
sends each newsletter on time, on one machine or several.

- ``times``: pure: a newsletter's fire times in the site's zone (DST included)
  and what to do about a send that is due (send, or skip past its grace).
- ``events``: one log line per event, as text or JSON lines.
- ``leader``: who may schedule: a lock file on SQLite, a PostgreSQL session
  advisory lock held on a dedicated connection.
- ``newsletters``: a newsletter's due send: claimed, sent, recorded in
  ``scheduled_sends`` (windows contiguous, nothing missed or doubled).
- ``service``: APScheduler 3 wiring of the jobs, ``--once``, SIGTERM, health file.

May import the store, ``config``, ``errors``, ``feeds`` (the build) and
``mail`` (the send); nothing imports it but the CLI. The web server never
starts a scheduler (APScheduler's job stores cannot be shared between processes).
"""
