"""A deterministic in-process simulator for the PBFT engine.

Seeded network (delay, jitter, loss, duplication, partitions), crashes with
restart from store and WAL, Byzantine replicas, client load, and the safety
and liveness checks every run is judged by.  Pure like the rest of
``consensus``: virtual time only, seeded randomness only, no I/O.
"""

from consensus.sim.checks import Violation
from consensus.sim.runner import RunResult, run_many, run_one, summarize
from consensus.sim.scenario import BEHAVIOURS, FaultPlan, Scenario, plan_faults

__all__ = [
    "BEHAVIOURS",
    "FaultPlan",
    "RunResult",
    "Scenario",
    "Violation",
    "plan_faults",
    "run_many",
    "run_one",
    "summarize",
]
