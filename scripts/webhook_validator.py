"""Probe a webhook without creating data; --send N delivers N records (= `bonzo-bulk validate-webhook`)."""

from bonzo_bulk.cli import script

if __name__ == "__main__":
    script("validate-webhook")
