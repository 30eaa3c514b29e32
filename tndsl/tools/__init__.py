"""Tools built on the compiler: dense reference, ``tndsl check``, rendering, export, derive, CLI."""
