"""The city's API (FastAPI + SQLModel)."""
