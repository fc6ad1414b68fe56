"""Standalone integration health check for cron or CI (= `bonzo-bulk health`)."""

from bonzo_bulk.cli import script

if __name__ == "__main__":
    script("health")
