"""Fault-injection experiments on a live local cluster (``medchain chaos``).

``record`` holds what a run observed (samples, fault windows, acknowledged
transactions); ``scenario`` reads the TOML scenario files; ``runner`` starts
the cluster, drives the load, applies the timeline and samples every node;
``checks`` judges the invariants (agreement, durability, validity, liveness,
evidence) from the stopped nodes' stores; ``report`` writes report.json,
report.md and the timeline plot.
"""
