"""Rotation of the Amazon SES SMTP credential a Kion installation uses."""
