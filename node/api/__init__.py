"""The node's HTTP API core: the server and its own routes (``server``) and server-sent events (``sse``).

The application adds its routes through ``node.app.Application.routes``.
"""
