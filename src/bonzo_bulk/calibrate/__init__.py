"""Calibrate: learn a contract from what Bonzo keeps (a mode that runs through the engine)."""
