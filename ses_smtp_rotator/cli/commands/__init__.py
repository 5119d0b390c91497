"""One module per subcommand of ``ses-smtp-rotator``: each adds its parser and runs it.

- ``derive``: the SES SMTP password for a secret access key.
- ``rotate``: start a rotation and follow it.
- ``status``: where an installation's credential stands.
- ``list``: the installations of a deployment.
- ``fleet``: ``rotate`` and ``status`` over several installations.
- ``set_kion_key``: store a new Kion App API key.
- ``abandon``: give up a stuck rotation once that is safe.
- ``rollback``: go back to the key the last rotation replaced, within its grace window.
"""
