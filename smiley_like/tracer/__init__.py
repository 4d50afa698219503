"""The traced side: what runs inside the user's program."""

import os

#: smiley_like's own directory: code from here is never traced, and frames from
#: here are left out of the program's tracebacks.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
