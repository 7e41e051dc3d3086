"""A release of the program: one run, its readiness gate, watchdog, restarts and upgrades."""

# Nothing public: the supervisor imports these private modules directly.
__all__: list[str] = []
