"""The package version, kept apart so that the runtime can record it without importing the package's API."""

__version__ = "0.1.0"
