"""Report files are written whole or not at all: a scratch file beside the target, then an atomic rename, so an
interrupt (Ctrl-C while a run publishes) or a full disk never leaves half a JSON summary or dashboard behind."""

from __future__ import annotations

import os
from pathlib import Path


def write_whole(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through ``.<name>.<pid>`` and ``os.replace``; the scratch file never outlives a
    failed write. Raises OSError as :meth:`Path.write_text` does."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return path
