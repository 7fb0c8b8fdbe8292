"""`python -m ccc_gateway` is the `ccc-gateway` command."""

import sys

from ccc_gateway.runtime.cli import main

sys.exit(main())
