"""The engine: one run loop that emits events; every mode runs through it."""
