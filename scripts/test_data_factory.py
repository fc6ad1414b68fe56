"""Print the test records a run would send, without sending (= `bonzo-bulk records`)."""

from bonzo_bulk.cli import script

if __name__ == "__main__":
    script("records")
