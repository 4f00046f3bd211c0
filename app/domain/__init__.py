"""Pure domain rules: no Flask, SQLAlchemy, Celery, Redis or Solana imports here."""
