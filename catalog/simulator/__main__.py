"""`python -m catalog.simulator …`, the same as `aios simulate-store …`."""

from __future__ import annotations

import sys

from catalog.simulator.command import main

sys.exit(main())
