#!/usr/bin/env python
"""Django's command-line utility; in embedded mode it reaches the embedded services like `aios`."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from aios_site.cli import manage

    sys.exit(manage(sys.argv[1:]))
