"""`python -m gan_zoo.cli`: the same as the `gan-zoo` console script."""

import sys

from gan_zoo.cli import main

sys.exit(main())
