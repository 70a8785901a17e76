"""gunicorn entry point: ``gunicorn services.vat.wsgi:app``."""

from services.vat import create_app

app = create_app()
