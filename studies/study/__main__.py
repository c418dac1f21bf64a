"""``python -m studies.study run|tune|status|report ...`` (the same as ``nrto study ...``)."""
import sys

from .cli import main

sys.exit(main())
