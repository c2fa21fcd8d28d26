"""The admin token every test server runs with, and headers that present it."""

from __future__ import annotations

ADMIN_TOKEN = "komi-test-admin-token-0123456789"
AUTH_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
