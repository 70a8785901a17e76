"""gunicorn entry point: ``gunicorn services.payment.wsgi:app``."""

from services.payment import create_app

app = create_app()
