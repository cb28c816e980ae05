"""Lab tools: local clusters, the demo story, experiments and benchmarks.

Nothing in a node process imports this package: it drives nodes from outside,
as an operator or a researcher would (``cluster``, ``testnet``,
``consortium``, ``story``, ``counterfeit``, ``bench``, ``bench_mix``,
``bench_verify``, ``sim``, ``storage_bench``, ``signing_bench``).  Shared by
the tools: ``fresh_cluster`` (a cluster started for one run and always
stopped), ``usage`` (CPU and memory through psutil), ``percentiles`` and
``progress``.  Their ``medchain`` commands are in ``node.cli.lab``.
"""
