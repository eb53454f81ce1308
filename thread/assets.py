"""Where the runtime's data folders live: grammars, rule sets and kernel sources.

In a source checkout (or an editable install) they are the top-level `grammars/` and
`kernels/` folders; in a wheel they are copied into the package as `thread/_grammars` and
`thread/_kernels`. This module hides that difference and nothing else.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def asset_dir(name: str) -> Path:
    """Return the folder `name` ("grammars" or "kernels"), packaged copy first."""
    packaged = PACKAGE_DIR / f"_{name}"
    if packaged.is_dir():
        return packaged
    checkout = PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"asset folder {name!r} not found in {packaged} or {checkout}")
