"""Storewise: recommendations and dynamic pricing for online shops."""

__version__ = "0.1.0"
