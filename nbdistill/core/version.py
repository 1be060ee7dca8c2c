"""The package version: in core, so that what core writes (run.json) needs nothing above it."""

__version__ = "0.1.0"
