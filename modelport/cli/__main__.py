"""``python -m modelport.cli``: the same as the ``modelport`` console script."""
import sys

from . import main

sys.exit(main())
