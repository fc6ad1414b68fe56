"""bonzo-bulk: prove, in bulk and end to end, that a webhook -> Bonzo integration works."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
