"""The daily watch over a deployment's installations.

- ``handler``: the entry point (``handler.lambda_handler``), run by the schedule or for one
  installation.
- ``daily_watch``: checks every installation, records metrics, alerts, starts due Kion key renewals.
- ``health``: the checks of one installation, shared with ``ses-smtp-rotator status``.
"""
