"""``python -m ses_smtp_rotator.cli``: the same as the ``ses-smtp-rotator`` command."""

import sys

from ses_smtp_rotator.cli.main import main

sys.exit(main())
