"""``python -m ses_smtp_rotator.demo``: see :mod:`ses_smtp_rotator.demo.run`."""

import sys

from .run import main

sys.exit(main())
