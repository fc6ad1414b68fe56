"""Cleanup: select exactly what a run made, delete it, report it."""
