"""Let ``python -m smiley_like`` work like ``smiley-like``."""

import sys

from smiley_like.app import main

sys.exit(main())
