"""``python -m ppwebdataset``: the ``ppwebdataset`` command."""

import sys

from .cli import main

sys.exit(main())
