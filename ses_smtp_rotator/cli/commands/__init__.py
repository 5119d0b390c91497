"""One module per subcommand of ``ses-smtp-rotator``: each adds its parser and runs it.

- ``derive``: the SES SMTP password for a secret access key.
- ``rotate``: start a rotation and follow it.
- ``status``: where an installation's credential stands.
- ``list``: the installations of a deployment.
- ``fleet``: ``rotate`` and ``status`` over several installations.
- ``set_kion_key``: store a new Kion App API key.
"""
