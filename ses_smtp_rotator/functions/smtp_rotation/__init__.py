"""Secrets Manager rotation function for a Kion installation's Amazon SES SMTP credential."""
