"""gunicorn entry point: ``gunicorn -w 1 --threads 8 simulators.registers.wsgi:app`` (one
process, so that rate windows are whole)."""

from simulators.registers import create_app

app = create_app()
