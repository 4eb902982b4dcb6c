"""`python -m zeal ...` is the same as the `zeal` command."""

import sys

from zeal.cli import main

sys.exit(main())
