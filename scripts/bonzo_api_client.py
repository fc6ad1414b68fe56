"""List test users' prospects through Bonzo's API, On-Behalf-Of (= `bonzo-bulk prospects`)."""

from bonzo_bulk.cli import script

if __name__ == "__main__":
    script("prospects")
