"""A pack's EPC is a fact of its GTIN: no licence change moves it, so its EPCIS export stays the same."""

import json

from node.genesis import Genesis
from node.healthcare.ledger import bodies as b
from node.healthcare.views import LedgerViews
from tests.healthcare.ledger.world import CHAIN, GTIN, PREFIX, T0, World

# GS1 Norway allocated 703123 (6 digits) to the company of this GTIN: its
# SGTIN splits after 703123, whatever prefix a licence names.
NORWAY_GTIN = "07031234000019"
NORWAY_EPC = "urn:epc:id:sgtin:703123.0400001.S1"
# The GS1 table splits 9506000134352 after 11 digits; the licence in the world names 9506000.
ODD_SERIAL = 'a/b%c?"&<>'
GS1_EPC = "urn:epc:id:sgtin:95060001343.05.a%2Fb%25c%3F%22%26%3C%3E"


def _world() -> tuple[World, LedgerViews]:
    w = World()
    chain = w.licensed_chain()
    w.ok(chain["regulator"], b.GrantLicence("maker", "manufacture", "703123"))
    w.ok(chain["maker"], b.Commission(GTIN, "L1", "301231", (ODD_SERIAL, "S2")))
    w.ok(chain["maker"], b.Commission(NORWAY_GTIN, "N1", "301231", ("S1",)))
    w.ok(chain["maker"], b.Ship("SH-1", "dist", (b.PackRef(GTIN, ODD_SERIAL), b.PackRef(NORWAY_GTIN, "S1")), ()))
    w.ok(chain["dist"], b.Receive("SH-1"))
    genesis = Genesis(CHAIN, T0, (), (), (), {}, w.orgs)
    return w, LedgerViews(w.state, genesis)


def _export(w: World, views: LedgerViews, gtin: str, serial: str) -> str:
    """The export as bytes a partner receives, its creation time blanked (it is the only part allowed to move)."""
    doc = views.epcis(gtin, serial, w.time_ms)
    assert doc is not None
    assert [e["medchain:event"] for e in doc["epcisBody"]["eventList"]] == ["commission", "ship", "receive"]
    return json.dumps({**doc, "creationDate": ""})


def test_the_epc_comes_from_gs1s_table_not_from_the_licence():
    w, views = _world()
    for gtin, serial, epc in ((GTIN, ODD_SERIAL, GS1_EPC), (NORWAY_GTIN, "S1", NORWAY_EPC)):
        doc = views.epcis(gtin, serial, w.time_ms)
        assert doc is not None
        assert {e for event in doc["epcisBody"]["eventList"] for e in event["epcList"]} == {epc}


def test_an_export_is_identical_before_and_after_every_licence_change():
    w, views = _world()
    reg = w.admin("regulator")
    packs = ((GTIN, ODD_SERIAL), (NORWAY_GTIN, "S1"))
    before = {pack: _export(w, views, *pack) for pack in packs}
    changes = [
        b.RevokeLicence("maker", "manufacture", "703123"),  # no licence covers the Norwegian GTIN
        b.RevokeLicence("maker", "manufacture", PREFIX),  # no licence covers either GTIN
        b.GrantLicence("maker", "manufacture", "7031234"),  # a licence of another length
        b.GrantLicence("maker", "manufacture", "95060001"),
        b.GrantLicence("maker", "manufacture", "950600"),
        b.GrantLicence("maker", "manufacture", PREFIX),  # the original one back, among others
    ]
    for change in changes:
        w.ok(reg, change)
        for pack in packs:
            assert _export(w, views, *pack) == before[pack], f"the export of {pack} moved after {change}"
