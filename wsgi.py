"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`.

The public API never holds the treasury's private key: it names the treasury by TREASURY_ADDRESS
only, and TREASURY_KEYPAIR is dropped from its configuration even when the environment has it
(the chain worker, `workers.celery_app`, signs withdrawals)."""

from app import create_app, logs
from app.config import Config

logs.configure()
app = create_app(Config.from_env().replace(treasury_keypair=""))
