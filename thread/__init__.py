"""thread: run a reasoning model as a tree of tasks inside a bounded KV cache."""

import logging

__version__ = "0.1.0"

# A library stays silent unless the application configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())
