"""The HTTP and WebSocket endpoints, one module per resource; `app.py` routes to them
and gives each its access `Rule`."""
