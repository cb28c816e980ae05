"""The healthcare application: health records and the drug supply chain.

``ledger`` holds the deterministic rules every validator runs; ``application``
dispatches a block's transactions to them; ``transactions`` are the bodies on
the wire.  Around the rules, what one organisation's node adds: its vault
(``vault``), FHIR content (``fhir``), GS1 codes (``gs1``), EPCIS export
(``epcis``), read views (``views``), the service (``service``), its HTTP
routes (``routes``) and the JSON documents they answer with (``documents``).
``node_app`` plugs all of it into a node through ``node.app.Application``.
"""
