"""`python -m pidone` is the `pidone` command."""

import sys

from pidone.cli import main

sys.exit(main())
