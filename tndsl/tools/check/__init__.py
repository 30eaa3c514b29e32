"""``tndsl check``: run each definition of a ``.tn`` file against an independent reference.

A file says how to check a definition in a comment line (the grammar ignores comments)::

    # check: Y = conv2d(X, W, b, stride=2, padding=1, groups=2) with X[2, 4, 7, 9], W[6, 2, 3, 3], b[6]
    # check: U = unfold2d(X, kernel_size=3, padding='same') with X[2, 3, 5, 6], k1=3, k2=3
    # check: K = dense() with X[3, 4]

- ``Y`` is the definition to check;
- ``conv2d`` names a reference registered in :data:`REFERENCES` (a Python function that
  computes the op with PyTorch); ``dense`` means "no PyTorch op": the definition is compared
  with :func:`tndsl.reference.dense_reference` only;
- positional arguments name the file's inputs passed to the reference, in its order;
  keyword arguments are the reference's parameters: integers, tuples of integers (a
  ``padding`` pair is ``(left, right)`` for every dimension, as in ``.tn``) and quoted strings;
- after ``with``: ``NAME[d0, d1, ...]`` is the shape of a random input, ``NAME=INT`` a
  keyword size of the definition.

Nothing from the file is ever evaluated: the line is tokenized and parsed here, the
reference name is looked up in a fixed table, and parameter values are plain literals.
Every definition is also compared with the dense reference. Errors are max-norm relative:
``max|y - r| / max|r|``.
"""

from .lines import CheckSpec, TnCheckError, parse_check_lines
from .references import DENSE, REFERENCES
from .runner import TOLERANCE, Row, check_file, check_main, format_table, relative_error

__all__ = [
    "Row",
    "CheckSpec",
    "REFERENCES",
    "DENSE",
    "check_file",
    "check_main",
    "format_table",
    "parse_check_lines",
    "relative_error",
    "TOLERANCE",
    "TnCheckError",
]
