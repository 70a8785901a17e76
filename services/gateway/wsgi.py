"""gunicorn entry point: ``gunicorn services.gateway.wsgi:app``."""

from services.gateway import create_app

app = create_app()
