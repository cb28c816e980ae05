"""Checks for VIEW-CHANGE and NEW-VIEW (Castro & Liskov, TOCS 2002, section 4.4).

A VIEW-CHANGE for view v+1 at height h carries the sender's highest prepared
certificate for h.  A NEW-VIEW carries 2f+1 of them; if any holds a prepared
certificate, the block of the highest-view one may already have been decided
and is the only block the new primary may propose at h.  Because every
replica re-derives that choice from the VIEW-CHANGEs inside the NEW-VIEW, a
faulty new primary cannot smuggle in another block.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.certificates import Verifier
from consensus.messages import Block, NewView, ViewChange
from consensus.quorum import primary_of


def check_view_change(verifier: Verifier, vc: ViewChange) -> str | None:
    """None when the VIEW-CHANGE's contents are sound (signature checked separately)."""
    cert = vc.prepared
    if cert is None:
        return None
    if cert.block.height != vc.height:
        return "prepared certificate for another height"
    if cert.view >= vc.new_view:
        return "prepared certificate from a view not below the new view"
    reason = verifier.check_prepared_certificate(cert)
    return None if reason is None else f"prepared certificate: {reason}"


def mandated_block(view_changes: Sequence[ViewChange]) -> Block | None:
    """The block of the highest-view prepared certificate, if any (ties: highest hash)."""
    best = None
    for vc in view_changes:
        cert = vc.prepared
        if cert is not None and (best is None or (cert.view, cert.block.hash) > (best.view, best.block.hash)):
            best = cert
    return None if best is None else best.block


def check_new_view(verifier: Verifier, nv: NewView) -> str | None:
    """None when ``nv`` is a valid NEW-VIEW (its own signature checked separately)."""
    if primary_of(nv.view, verifier.n) != nv.sender:
        return f"validator {nv.sender} is not the primary of view {nv.view}"
    senders: set[int] = set()
    for vc in nv.view_changes:
        if vc.new_view != nv.view or vc.height != nv.height:
            return f"VIEW-CHANGE from {vc.sender} is for another view or height"
        if vc.sender in senders:
            return f"two VIEW-CHANGEs from validator {vc.sender}"
        senders.add(vc.sender)
        if not verifier.verify(vc.sender, vc.DOMAIN, vc.signing_payload(), vc.signature):
            return f"bad signature on the VIEW-CHANGE from {vc.sender}"
        reason = check_view_change(verifier, vc)
        if reason is not None:
            return f"VIEW-CHANGE from {vc.sender}: {reason}"
    if len(senders) < verifier.quorum:
        return f"{len(senders)} VIEW-CHANGEs, a quorum is {verifier.quorum}"
    mandated = mandated_block(nv.view_changes)
    if mandated is not None and (nv.block is None or nv.block.hash != mandated.hash):
        return "NEW-VIEW does not re-propose the highest prepared block"
    if nv.block is not None and nv.block.height != nv.height:
        return "NEW-VIEW proposes a block for another height"
    return None
