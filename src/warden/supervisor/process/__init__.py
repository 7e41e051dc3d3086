"""Process handling: spawn and the exec shim, the reaper, the stop ladder, exit reasons."""

# Nothing public: the supervisor imports these private modules directly.
__all__: list[str] = []
