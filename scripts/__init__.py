"""The spec's command-line scripts: each a thin entry into a ``bonzo-bulk`` command."""
