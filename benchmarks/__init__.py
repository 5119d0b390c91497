"""Benchmarks of the rotation function (``make bench``): figures printed beside their goals.

P1 import time, P2 overhead over bare calls, P3 time spent waiting for SES propagation, P4 calls
per rotation. They are measured on loopback servers in one run; they never fail because a
machine is slow.
"""
