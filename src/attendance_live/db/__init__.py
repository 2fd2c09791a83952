"""Storage: SQLAlchemy 2 async models, engine setup and Alembic migrations."""

__all__ = []
