"""gunicorn entry point: ``gunicorn services.registry.wsgi:app``."""

from services.registry import create_app

app = create_app()
