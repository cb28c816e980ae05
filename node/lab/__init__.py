"""Lab tools: local clusters, the demo story, experiments and benchmarks.

Nothing in a node process imports this package: it drives nodes from outside,
as an operator or a researcher would (``cluster``, ``testnet``,
``consortium``, ``story``, ``counterfeit``, ``bench``, ``bench_mix``, ``sim``,
``storage_bench``, ``signing_bench``).
"""
