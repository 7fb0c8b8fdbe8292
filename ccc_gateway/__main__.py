"""`python -m ccc_gateway` is the `ccc-gateway` command."""

import sys

from .cli import main

sys.exit(main())
