"""The package version, in a module of its own: any layer may read it cheaply."""

__version__ = "0.1.0"
