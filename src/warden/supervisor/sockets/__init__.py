"""The listening sockets warden holds for every run of the program."""

# Nothing public: the supervisor imports these private modules directly.
__all__: list[str] = []
