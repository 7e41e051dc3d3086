"""The control socket: warden status, upgrade, reload and stop."""

# Nothing public: the supervisor imports these private modules directly.
__all__: list[str] = []
