"""WSGI entry point of the VIES simulator, knobs from the environment.

Run it as one process with threads so the concurrency counts are whole, e.g.
``gunicorn --workers 1 --threads 16 simulators.vies.wsgi:app``.
"""

from __future__ import annotations

from . import create_app

app = create_app()
