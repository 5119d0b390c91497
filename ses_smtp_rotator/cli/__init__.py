"""``ses-smtp-rotator``, the operator's command line.

- ``main``: the parser and the entry point (``main.main``).
- ``commands``: one module per subcommand.
- The rest is what the commands share: AWS access, the installations of a deployment, a secret's
  state, the rotation function's logs and settings, the watch's answers, exit codes and reports.
"""
