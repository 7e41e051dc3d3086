"""The notify server: sd_notify messages from the program, checked by credentials."""

# Nothing public: the supervisor imports these private modules directly.
__all__: list[str] = []
