"""`python -m soak [--short]`: the production topology under load and faults (issue 16)."""

import sys

from soak.run import main

if __name__ == "__main__":
    sys.exit(main())
