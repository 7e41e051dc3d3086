"""Servers run well under warden: what a server needs that its own defaults do not give.

Each module imports its server only when it is imported itself; none is imported here.
"""

# Each server's module is public on its own (``warden.integrations.uvicorn``...).
__all__: list[str] = []
