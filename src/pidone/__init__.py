"""pidone: an init for containers."""

__version__ = "0.1.0"
