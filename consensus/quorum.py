"""Quorum arithmetic (Castro & Liskov, section 4: n >= 3f + 1).

For n = 3f + 1 the quorum is the paper's 2f + 1.  For other n (say 32, where
f = 10) 2f + 1 would let two quorums meet in only f replicas, which may all be
faulty; ``quorum`` is the smallest size whose pairwise intersection is f + 1,
so it always contains an honest replica: ceil((n + f + 1) / 2).
"""


def max_faulty(n: int) -> int:
    return (n - 1) // 3


def quorum(n: int) -> int:
    return (n + max_faulty(n)) // 2 + 1


def weak_quorum(n: int) -> int:
    """f + 1: enough replicas that at least one of them is honest."""
    return max_faulty(n) + 1


def primary_of(view: int, n: int) -> int:
    return view % n
