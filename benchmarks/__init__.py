"""Benchmarks of the product (``make bench``): figures printed beside their goals.

P1 import time, P2 overhead over a bare script making the same proof, P3 the time spent waiting
for SES propagation beside its physical limit (and the peer's proof beside it), P4 every call of
a rotation, a Kion API key renewal and a watch check with its reason, the daily watch at scale,
and P8 ``rotate --all`` beside Secrets Manager's quota. They are measured on loopback servers in
one run; they never fail because a machine is slow.
"""
