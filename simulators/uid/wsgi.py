"""WSGI entry point of the UID register simulator, knobs from the environment.

Run it as one process with threads so the tokens and counters are whole, e.g.
``gunicorn --workers 1 --threads 8 simulators.hmrc.wsgi:app``.
"""

from __future__ import annotations

from . import create_app

app = create_app()
