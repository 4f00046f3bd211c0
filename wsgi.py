"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""

from app import create_app, logs

logs.configure()
app = create_app()
