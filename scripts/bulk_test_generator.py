"""Generate bulk test records: deliver them, or with --dry-run write them (= `bonzo-bulk generate`)."""

from bonzo_bulk.cli import script

if __name__ == "__main__":
    script("generate")
