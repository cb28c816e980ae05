"""The OpenAPI description: a valid OpenAPI 3.1 document that names exactly the routes a node registers.

The routes come from a real node's aiohttp application, built in-process from
a generated consortium network (real keys, real LevelDB store and vault), with
no socket opened except the loopback server that serves it here.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from node.api.openapi import document
from node.api.server import Api
from node.config import load_config, read_key
from node.healthcare.node_app import healthcare_app
from node.lab.consortium import load_consortium
from node.lab.testnet import generate_testnet
from node.p2p.setup import build_transport
from node.runtime import Node
from storage.chainstore import ChainStore

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
async def node_app(tmp_path: Path) -> AsyncIterator[web.Application]:
    """The aiohttp application of one real node of a consortium-4 network (not started)."""
    genesis = generate_testnet(tmp_path, 0, consortium=load_consortium(ROOT / "configs" / "consortium-4.toml"))
    home = tmp_path / genesis.validators[0].name
    config = load_config(home)
    key = read_key(home / "node_key.json")
    store = ChainStore.open(config.path(config.data_dir), genesis.chain_id, genesis.hash)
    node = Node(config, genesis, key, store, build_transport(config, genesis, key, home), healthcare_app(home))
    try:
        yield Api(node).app()
    finally:
        node.app.close()
        store.close()


def registered_routes(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route; aiohttp's automatic HEAD for each GET is left out."""
    routes = set()
    for route in app.router.routes():
        if route.method != "HEAD":
            routes.add((route.method, route.resource.canonical))
    return routes


def described_routes(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS}


def test_the_description_is_a_valid_openapi_3_1_document():
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)


def test_the_validator_refuses_a_broken_description():
    """The check above can fail: a path parameter with no definition is invalid."""
    doc = document()
    broken = {**doc, "paths": {**doc["paths"], "/blocks/{height}": {"get": {"responses": {"200": {
        "description": "no parameter declared for {height}"}}}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


async def test_the_paths_and_methods_are_exactly_the_routes_a_node_registers(node_app):
    registered = registered_routes(node_app)
    assert ("GET", "/openapi.json") in registered
    assert ("POST", "/ehr/records/{rid}/read") in registered  # the healthcare routes are part of the app
    described = described_routes(document())
    assert sorted(registered - described) == [], "routes with no description"
    assert sorted(described - registered) == [], "described routes a node does not serve"


async def test_every_node_serves_the_description(node_app):
    async with TestClient(TestServer(node_app)) as client:
        response = await client.get("/openapi.json")
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == document()


def test_every_error_answer_has_the_error_shape():
    doc = document()
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and not (path == "/health" and status == "503"):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"
