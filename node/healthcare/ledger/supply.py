"""The drug supply chain: serialised packs from commissioning to dispensing, recalls and alerts.

Rules (each refusal is a ``Rejected`` with the code in brackets):

* Only licensed parties act [not-licensed]: commissioning needs a manufacture
  licence for the GTIN's company prefix; shipping needs any licence and a
  recipient licensed to distribute or dispense; receiving needs a distribute
  or dispense licence; dispensing needs a dispense licence and a pharmacist.
* Only the current custodian ships, dispenses or destroys a pack [not-custodian].
* Nothing recalled [recalled], quarantined [quarantined], expired at the
  block's time [expired], in transit [in-transit], dispensed
  [already-dispensed] or destroyed [destroyed] is shipped, received or
  dispensed.
* A receive must match an open shipment to the receiver [not-recipient,
  shipment-closed].  It settles the shipment, not each pack: while a shipment
  is open its packs cannot leave it (shipping, dispensing and destroying refuse
  packs in transit), so the shipment's lots (recalls, quarantine, expiry) and
  its count of packs quarantined one by one are all a receive checks, and a
  pack of a received shipment is read as active at the recipient
  (``settled``) until its next event writes it so.
* Recalls come from the regulator or the lot's manufacturer; quarantine and
  release from the regulator.
* An alert is filed only when the state bears it out [alert-unfounded]: the
  verdict for the scanned code, at the block's time, is the one reported.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace

from node.app import Rejected
from node.healthcare.gs1 import Gs1Error, check_expiry, check_gtin, check_lot, check_serial, expired
from node.healthcare.ledger.bodies import (
    Commission,
    Destroy,
    Dispense,
    LotRef,
    PackRef,
    Quarantine,
    Recall,
    Receive,
    Release,
    ScanAlert,
    Ship,
)
from node.healthcare.ledger.identity import Actor, Directory
from node.healthcare.ledger.records import (
    ALERT_COUNT,
    Alert,
    Event,
    Lot,
    Pack,
    Shipment,
    ShipmentPacks,
    alert_key,
    event_key,
    licence_key,
    lot_hold_key,
    lot_key,
    lot_pack_key,
    lot_packs_prefix,
    pack_hold_key,
    pack_key,
    recall_hold_key,
    shipment_key,
    shipment_packs_key,
)
from node.healthcare.ledger.state import Ctx, Overlay, encode_state
from primitives.codec import pack as msgpack_pack
from primitives.codec import unpack_strict

CUSTODY_ROLES = ("admin", "logistics", "pharmacist")
UNSELLABLE = {  # a pack's status -> the refusal when it is shipped or dispensed (a receive checks its shipment)
    "destroyed": "destroyed", "dispensed": "already-dispensed", "recalled": "recalled",
    "quarantined": "quarantined", "expired": "expired", "in_transit": "in-transit",
}
MAX_LOT_SHIP = 5000

# GS1 Lightweight Messaging verification vocabulary.
NO_MATCH_SERIAL = "No_match_GTIN_Serial"
NO_MATCH_LOT = "No_match_GTIN_Serial_Lot"
NO_MATCH_EXPIRY = "No_match_GTIN_Serial_Expiry"
NO_MATCH_LOT_EXPIRY = "No_match_GTIN_Serial_Lot_Expiry"
NOT_FOR_REDISTRIBUTION = "Not_for_re-distribution"
NO_REASON = "No_reason_provided"
REASONS = (NO_MATCH_SERIAL, NO_MATCH_LOT, NO_MATCH_EXPIRY, NO_MATCH_LOT_EXPIRY, NOT_FOR_REDISTRIBUTION, NO_REASON,
           "Manufacturer_policy")
INFOS = ("", "Expired", "Recalled", "Suspect", "AlreadyDispensed", "Illegitimate")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to a scan: GS1 LMS ``verified``, reason and additional info, medchain's status."""

    verified: bool
    status: str  # active | in_transit | dispensed | recalled | quarantined | expired | destroyed | unknown
    reason: str  # "" when verified
    info: str
    alert: bool  # a scan with this verdict raises an alert


def pack_status(pack: Pack, lot: Lot | None, now_ms: int) -> tuple[str, str]:
    """(status, additionalInfo) of a pack that exists."""
    if pack.state == "destroyed":
        return "destroyed", "Illegitimate"
    if pack.state == "dispensed":
        return "dispensed", "AlreadyDispensed"
    if lot is not None and lot.recalled is not None:
        return "recalled", "Recalled"
    if pack.suspect is not None or (lot is not None and lot.suspect is not None):
        return "quarantined", "Suspect"
    if expired(pack.expiry, now_ms):
        return "expired", "Expired"
    return pack.state, ""


def settled(state: Overlay, pack: Pack) -> Pack:
    """``pack`` as it stands: in a shipment that was received, it is active at the recipient.

    A receive writes only its shipment; the pack record keeps saying "in
    transit" until the pack's next event writes it whole.  Every reader of a
    pack goes through here, so it sees what a receive that rewrote each pack
    would have left: the recipient as custodian, no shipment, and the receive
    among its events.
    """
    if pack.state != "in_transit" or pack.shipment is None:
        return pack
    shipment = state.load(Shipment, shipment_key(pack.shipment))
    if shipment is None or shipment.received_tx is None:
        return pack
    return Pack(pack.lot, pack.expiry, "active", shipment.to_org, pack.manufacturer, pack.suspect, None,
                (*pack.events, shipment.received_tx))


def load_pack(state: Overlay, gtin: str, serial: str, key: bytes | None = None) -> Pack | None:
    """The pack as it stands (``settled``), or None if it was never commissioned."""
    found = state.load(Pack, key or pack_key(gtin, serial))
    return None if found is None else settled(state, found)


def verify_code(state: Overlay, gtin: str, serial: str, lot: str | None, expiry: str | None, now_ms: int) -> Verdict:
    """The verdict for a scanned (GTIN, serial[, lot][, expiry]) against the state at ``now_ms``."""
    pack = load_pack(state, gtin, serial)
    if pack is None:
        return Verdict(False, "unknown", NO_MATCH_SERIAL, "", True)
    lot_bad = lot is not None and lot != pack.lot
    expiry_bad = expiry is not None and expiry != pack.expiry
    if lot_bad or expiry_bad:
        reason = NO_MATCH_LOT_EXPIRY if lot_bad and expiry_bad else (NO_MATCH_LOT if lot_bad else NO_MATCH_EXPIRY)
        return Verdict(False, "unknown", reason, "Suspect", True)
    status, info = pack_status(pack, state.load(Lot, lot_key(gtin, pack.lot)), now_ms)
    if status in ("active", "in_transit"):
        return Verdict(True, status, "", "", False)
    if status in ("dispensed", "destroyed"):
        return Verdict(False, status, NOT_FOR_REDISTRIBUTION, info, True)
    return Verdict(False, status, NO_REASON, info, False)


@functools.lru_cache(maxsize=4096)
def _scope_keys(org: str, gtin: str) -> tuple[tuple[str, bytes], ...]:
    """The manufacture licences that would cover ``gtin`` for ``org``: a GS1 company prefix has 6 to 12 digits."""
    return tuple((gtin[1:1 + n], licence_key(org, "manufacture", gtin[1:1 + n])) for n in range(6, 13))


def _gs1(fn: object, *args: str) -> str:
    try:
        return fn(*args)  # type: ignore[operator, no-any-return]
    except Gs1Error as exc:
        raise Rejected("bad-gs1", str(exc)) from None


class Supply:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    # ------------------------------------------------------------ helpers

    def _actor(self, ctx: Ctx, roles: Iterable[str] = CUSTODY_ROLES) -> Actor:
        actor = self.directory.actor(ctx.state, ctx.signer)
        if actor.org is None or actor.role not in tuple(roles):
            raise Rejected("not-authorised", f"this needs a key of an organisation with role {', '.join(roles)}")
        return actor

    @staticmethod
    def _manufacture_scope(state: Overlay, org: str, gtin: str) -> str | None:
        """The company prefix of ``org``'s manufacture licence that covers ``gtin`` (key lookups, no scan)."""
        for scope, key in _scope_keys(org, gtin):
            if state.get(key) is not None:
                return scope
        return None

    def _require_licence(self, state: Overlay, org: str, kinds: tuple[str, ...], gtin: str | None = None) -> None:
        """``org`` holds one of ``kinds``; a manufacture licence counts when it covers ``gtin``."""
        for kind in kinds:
            if kind == "manufacture":
                if gtin is not None and self._manufacture_scope(state, org, gtin) is not None:
                    return
            elif state.get(licence_key(org, kind, "")) is not None:
                return
        raise Rejected("not-licensed", f"{org} holds no {' or '.join(kinds)} licence"
                       + (f" for GTIN {gtin}" if gtin and "manufacture" in kinds else ""))

    @staticmethod
    def _event(ctx: Ctx, kind: str, org: str, other: str = "", ref: str = "") -> bytes:
        """Store the transaction's event once; packs and lots refer to it by tx id."""
        ctx.state.store(event_key(ctx.tx_id), Event(kind, ctx.tx_id, ctx.height, ctx.time_ms, org, other, ref[:200]))
        return ctx.tx_id

    @staticmethod
    def _pack(state: Overlay, ref: PackRef, key: bytes | None = None) -> Pack:
        found = load_pack(state, ref.gtin, ref.serial, key)
        if found is None:
            raise Rejected("unknown-pack", f"no pack {ref.gtin}/{ref.serial} was commissioned")
        return found

    @staticmethod
    def _sellable(state: Overlay, ref: PackRef, pack: Pack, now_ms: int,
                  lots: dict[bytes, Lot | None] | None = None) -> None:
        key = lot_key(ref.gtin, pack.lot)
        if lots is None:
            lot = state.load(Lot, key)
        elif key in lots:
            lot = lots[key]
        else:
            lot = lots[key] = state.load(Lot, key)
        status, _ = pack_status(pack, lot, now_ms)
        code = UNSELLABLE.get(status)
        if code is not None:
            raise Rejected(code, f"pack {ref.gtin}/{ref.serial} is {status.replace('_', ' ')}")

    # ------------------------------------------------------------ commission

    def commission(self, ctx: Ctx, body: Commission) -> None:
        actor = self._actor(ctx, ("admin", "logistics"))
        assert actor.org is not None
        if actor.org.kind != "manufacturer":
            raise Rejected("not-manufacturer", "only a manufacturer commissions packs")
        gtin = _gs1(check_gtin, body.gtin)
        if gtin != body.gtin:
            raise Rejected("bad-gs1", "gtin: write the GTIN as 14 digits")
        _gs1(check_lot, body.lot)
        _gs1(check_expiry, body.expiry)
        if self._manufacture_scope(ctx.state, actor.org.id, gtin) is None:
            raise Rejected("not-licensed", f"{actor.org.id} holds no manufacture licence for GTIN {gtin}'s prefix")
        if not body.serials:
            raise Rejected("no-serials", "commission at least one serial")
        if len(set(body.serials)) != len(body.serials):
            raise Rejected("duplicate-serial", "a serial is listed twice")
        if expired(body.expiry, ctx.time_ms):
            raise Rejected("expired", f"lot {body.lot} expired ({body.expiry}) before it was commissioned")
        lot = ctx.state.load(Lot, lot_key(gtin, body.lot))
        if lot is not None and (lot.expiry != body.expiry or lot.manufacturer != actor.org.id):
            raise Rejected("lot-mismatch", f"lot {body.lot} exists with expiry {lot.expiry} by {lot.manufacturer}")
        event = self._event(ctx, "commission", actor.org.id, ref=body.lot)
        org = actor.org.id
        fresh = Pack(body.lot, body.expiry, "active", org, org, None, None, (event,))  # every new pack of it alike
        encoded = encode_state(fresh)
        for serial in body.serials:
            _gs1(check_serial, serial)
            key = pack_key(gtin, serial)
            if ctx.state.get(key) is not None:
                raise Rejected("duplicate-serial", f"serial {serial} of GTIN {gtin} is already commissioned")
            ctx.state.store_encoded(key, fresh, encoded)
            ctx.state.put(lot_pack_key(gtin, body.lot, serial), b"")
        count = (lot.packs if lot else 0) + len(body.serials)
        ctx.state.store(lot_key(gtin, body.lot), Lot(body.expiry, actor.org.id, count, lot.recalled if lot else None,
                                                      lot.suspect if lot else None, lot.events if lot else ()))

    # ------------------------------------------------------------ custody

    def ship(self, ctx: Ctx, body: Ship) -> None:
        actor = self._actor(ctx)
        sender = actor.org_id
        first = body.packs[0].gtin if body.packs else (body.lots[0].gtin if body.lots else None)
        self._require_licence(ctx.state, sender, ("manufacture", "distribute", "dispense"), first)
        recipient = self.directory.org(body.to_org, ctx.state)
        if recipient.id == sender:
            raise Rejected("bad-recipient", "a shipment goes to another organisation")
        self._require_licence(ctx.state, recipient.id, ("distribute", "dispense"))
        if not body.shipment_id:
            raise Rejected("bad-shipment", "a shipment needs an id")
        if ctx.state.get(shipment_key(body.shipment_id)) is not None:
            raise Rejected("shipment-exists", f"shipment {body.shipment_id} already exists")
        refs = list(body.packs)
        for lot_ref in body.lots:
            held = self._lot_holdings(ctx.state, lot_ref.gtin, lot_ref.lot, sender)
            if not held:
                raise Rejected("nothing-to-ship", f"{sender} holds no active pack of lot {lot_ref.lot}")
            refs.extend(held)
        if not refs:
            raise Rejected("nothing-to-ship", "list packs or lots to ship")
        if len(set(refs)) != len(refs):
            raise Rejected("duplicate-pack", "a pack is listed twice (directly or through its lot)")
        event = self._event(ctx, "ship", sender, recipient.id, body.shipment_id)
        updates = []
        lots: dict[bytes, Lot | None] = {}
        lot_refs: dict[LotRef, None] = {}  # in order of first appearance
        for ref in refs:
            key = pack_key(ref.gtin, ref.serial)
            pack = self._pack(ctx.state, ref, key)
            if pack.custodian != sender:
                raise Rejected("not-custodian", f"pack {ref.gtin}/{ref.serial} is held by {pack.custodian}")
            self._sellable(ctx.state, ref, pack, ctx.time_ms, lots=lots)
            lot_refs[LotRef(ref.gtin, pack.lot)] = None
            updates.append((key, Pack(pack.lot, pack.expiry, "in_transit", pack.custodian, pack.manufacturer,
                                      pack.suspect, body.shipment_id, (*pack.events, event))))
        for key, pack in updates:
            ctx.state.store(key, pack)
        ctx.state.store(shipment_key(body.shipment_id),
                        Shipment(sender, recipient.id, ctx.height, ctx.tx_id, tuple(lot_refs), 0, None))
        ctx.state.store(shipment_packs_key(body.shipment_id), ShipmentPacks(tuple(refs)))

    def _lot_holdings(self, state: Overlay, gtin: str, lot: str, holder: str) -> list[PackRef]:
        prefix = lot_packs_prefix(gtin, lot)
        out = []
        for key, _ in state.scan(prefix, MAX_LOT_SHIP * 2):
            ref = PackRef(gtin, key[len(prefix):].decode())
            pack = load_pack(state, gtin, ref.serial)
            if pack is not None and pack.custodian == holder and pack.state == "active":
                out.append(ref)
        if len(out) > MAX_LOT_SHIP:
            raise Rejected("too-many-packs", f"a lot shipment holds at most {MAX_LOT_SHIP} packs; list them in parts")
        return out

    def receive(self, ctx: Ctx, body: Receive) -> None:
        actor = self._actor(ctx)
        shipment = ctx.state.load(Shipment, shipment_key(body.shipment_id))
        if shipment is None:
            raise Rejected("unknown-shipment", f"no shipment {body.shipment_id}")
        if shipment.to_org != actor.org_id:
            raise Rejected("not-recipient", f"shipment {body.shipment_id} is addressed to {shipment.to_org}")
        if shipment.status != "open":
            raise Rejected("shipment-closed", f"shipment {body.shipment_id} was already received")
        self._require_licence(ctx.state, actor.org_id, ("distribute", "dispense"))
        # Its packs are still in it (nothing takes a pack out of an open shipment): what can stop them is
        # their lots and the packs quarantined one by one, in the order a pack's status says it.
        lots = [(ref, self._lot(ctx.state, ref.gtin, ref.lot)) for ref in shipment.lots]
        for ref, lot in lots:
            if lot.recalled is not None:
                raise Rejected("recalled", f"lot {ref.lot} of shipment {body.shipment_id} is recalled")
        for ref, lot in lots:
            if lot.suspect is not None:
                raise Rejected("quarantined", f"lot {ref.lot} of shipment {body.shipment_id} is quarantined")
        if shipment.suspects:
            raise Rejected("quarantined", f"{shipment.suspects} pack(s) of shipment {body.shipment_id} are quarantined")
        for ref, lot in lots:
            if expired(lot.expiry, ctx.time_ms):
                raise Rejected("expired", f"lot {ref.lot} of shipment {body.shipment_id} expired ({lot.expiry})")
        event = self._event(ctx, "receive", actor.org_id, shipment.from_org, body.shipment_id)
        ctx.state.store(shipment_key(body.shipment_id), replace(shipment, received_tx=event))

    def dispense(self, ctx: Ctx, body: Dispense) -> None:
        actor = self._actor(ctx, ("pharmacist",))
        self._require_licence(ctx.state, actor.org_id, ("dispense",))
        ref = PackRef(body.gtin, body.serial)
        key = pack_key(ref.gtin, ref.serial)
        pack = self._pack(ctx.state, ref, key)
        self._sellable(ctx.state, ref, pack, ctx.time_ms)
        if pack.custodian != actor.org_id:
            raise Rejected("not-custodian", f"pack {ref.gtin}/{ref.serial} is held by {pack.custodian}")
        event = self._event(ctx, "dispense", actor.org_id)
        ctx.state.store(key, Pack(pack.lot, pack.expiry, "dispensed", pack.custodian, pack.manufacturer, pack.suspect,
                                  pack.shipment, (*pack.events, event)))

    def destroy(self, ctx: Ctx, body: Destroy) -> None:
        actor = self._actor(ctx, (*CUSTODY_ROLES, "inspector"))
        regulator = actor.org is not None and actor.org.kind == "regulator"
        if not body.packs:
            raise Rejected("nothing-to-destroy", "list the packs to destroy")
        if len(set(body.packs)) != len(body.packs):
            raise Rejected("duplicate-pack", "a pack is listed twice")
        event = self._event(ctx, "destroy", actor.org_id, ref=body.reason)
        updates = []
        for ref in body.packs:
            pack = self._pack(ctx.state, ref)
            if not regulator and pack.custodian != actor.org_id:
                raise Rejected("not-custodian", f"pack {ref.gtin}/{ref.serial} is held by {pack.custodian}")
            if pack.state in ("dispensed", "destroyed", "in_transit"):
                raise Rejected(pack.state.replace("_", "-") if pack.state != "dispensed" else "already-dispensed",
                               f"pack {ref.gtin}/{ref.serial} is {pack.state.replace('_', ' ')}")
            updates.append((ref, replace(pack, state="destroyed", events=(*pack.events, event))))
        for ref, pack in updates:
            ctx.state.store(pack_key(ref.gtin, ref.serial), pack)

    # ------------------------------------------------------------ regulator

    def _lot(self, state: Overlay, gtin: str, lot: str) -> Lot:
        found = state.load(Lot, lot_key(gtin, lot))
        if found is None:
            raise Rejected("unknown-lot", f"no lot {lot} of GTIN {gtin} was commissioned")
        return found

    def recall(self, ctx: Ctx, body: Recall) -> None:
        lot = self._lot(ctx.state, body.gtin, body.lot)
        actor = self.directory.actor(ctx.state, ctx.signer)
        regulator = actor.org is not None and actor.org.kind == "regulator" and actor.is_("admin", "inspector")
        maker = actor.org_id == lot.manufacturer and actor.is_("admin", "logistics")
        if not (regulator or maker):
            raise Rejected("not-authorised", "only the regulator or the lot's manufacturer recalls it")
        if not body.reason:
            raise Rejected("no-reason", "a recall needs a reason")
        if lot.recalled is not None:
            raise Rejected("already-recalled", f"lot {body.lot} is already recalled")
        event = self._event(ctx, "recall", actor.org_id, ref=body.reason)
        ctx.state.store(lot_key(body.gtin, body.lot),
                        replace(lot, recalled=body.reason, events=(*lot.events, event)))
        ctx.state.put(recall_hold_key(body.gtin, body.lot), b"")

    def _regulator(self, ctx: Ctx) -> Actor:
        actor = self.directory.actor(ctx.state, ctx.signer)
        if actor.org is None or actor.org.kind != "regulator" or not actor.is_("admin", "inspector"):
            raise Rejected("not-regulator", "only the regulator's admin or an inspector may do this")
        return actor

    def flag(self, ctx: Ctx, body: Quarantine | Release) -> None:
        actor = self._regulator(ctx)
        on = isinstance(body, Quarantine)
        kind = "quarantine" if on else "release"
        if (body.lot is None) == (body.serial is None):
            raise Rejected("bad-target", f"{kind} names a lot or a serial, not both")
        event = self._event(ctx, kind, actor.org_id, ref=body.reason)
        if body.serial is not None:
            ref = PackRef(body.gtin, body.serial)
            pack = self._pack(ctx.state, ref)
            if (pack.suspect is not None) == on:
                raise Rejected("already-quarantined" if on else "not-quarantined",
                               f"pack {ref.gtin}/{ref.serial} is {'already' if on else 'not'} quarantined")
            ctx.state.store(pack_key(ref.gtin, ref.serial),
                            replace(pack, suspect=(body.reason or kind) if on else None, events=(*pack.events, event)))
            ctx.state.put(pack_hold_key(ref.gtin, ref.serial), b"" if on else None)
            if pack.state == "in_transit" and pack.shipment is not None:  # its receive checks this count
                key = shipment_key(pack.shipment)
                shipment = ctx.state.load(Shipment, key)
                if shipment is not None:
                    ctx.state.store(key, replace(shipment, suspects=shipment.suspects + (1 if on else -1)))
            return
        assert body.lot is not None
        lot = self._lot(ctx.state, body.gtin, body.lot)
        if (lot.suspect is not None) == on:
            raise Rejected("already-quarantined" if on else "not-quarantined",
                           f"lot {body.lot} is {'already' if on else 'not'} quarantined")
        ctx.state.store(lot_key(body.gtin, body.lot),
                        replace(lot, suspect=(body.reason or kind) if on else None, events=(*lot.events, event)))
        ctx.state.put(lot_hold_key(body.gtin, body.lot), b"" if on else None)

    # ------------------------------------------------------------ alerts

    def alert(self, ctx: Ctx, body: ScanAlert) -> None:
        actor = self.directory.actor(ctx.state, ctx.signer)
        if actor.org is None:
            raise Rejected("not-authorised", "alerts are filed by a consortium node or member")
        if body.reason not in REASONS or body.info not in INFOS:
            raise Rejected("bad-alert", f"reason {body.reason!r} / info {body.info!r} are not GS1 LMS terms")
        verdict = verify_code(ctx.state, body.gtin, body.serial, body.lot, body.expiry, ctx.time_ms)
        if not verdict.alert or (verdict.reason, verdict.info) != (body.reason, body.info):
            raise Rejected("alert-unfounded", f"the scan verifies as {verdict.status} here, not {body.reason}")
        raw = ctx.state.get(ALERT_COUNT)
        seq = unpack_strict(raw) if raw is not None else 0
        ctx.state.store(alert_key(seq), Alert(seq, body.gtin, body.serial, body.lot, body.expiry, body.reason,
                                              body.info, body.scanned_by, actor.org_id, ctx.height, ctx.time_ms,
                                              ctx.tx_id))
        ctx.state.put(ALERT_COUNT, msgpack_pack(seq + 1))


def static_problem(body: object) -> str | None:
    """GS1 fields a body carries that are malformed, as 'field: why' (checked at admission, before ordering)."""
    checks: list[tuple[str, object, str]] = []
    if isinstance(body, Commission):
        checks += [("gtin", check_gtin, body.gtin), ("lot", check_lot, body.lot), ("expiry", check_expiry, body.expiry)]
        checks += [(f"serials[{i}]", check_serial, s) for i, s in enumerate(body.serials)]
    elif isinstance(body, Dispense):
        checks += [("gtin", check_gtin, body.gtin), ("serial", check_serial, body.serial)]
    elif isinstance(body, Ship | Destroy):
        for i, ref in enumerate(body.packs):
            checks += [(f"packs[{i}].gtin", check_gtin, ref.gtin), (f"packs[{i}].serial", check_serial, ref.serial)]
        if isinstance(body, Ship):
            checks += [(f"lots[{i}].gtin", check_gtin, ref.gtin) for i, ref in enumerate(body.lots)]
    elif isinstance(body, Recall):
        checks += [("gtin", check_gtin, body.gtin), ("lot", check_lot, body.lot)]
    elif isinstance(body, Quarantine | Release | ScanAlert):
        checks += [("gtin", check_gtin, body.gtin)]
    for name, fn, value in checks:
        try:
            normal = fn(value)  # type: ignore[operator]
        except Gs1Error as exc:
            return f"{name}: {exc}"
        if name.endswith("gtin") and normal != value:
            return f"{name}: write the GTIN as 14 digits ({normal})"
    return None
