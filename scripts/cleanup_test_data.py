"""Remove test prospects by run, pattern or all test data; dry run unless --yes (= `bonzo-bulk cleanup`)."""

from bonzo_bulk.cli import script

if __name__ == "__main__":
    script("cleanup")
