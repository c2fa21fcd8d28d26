"""The admin token every test server runs with, and headers that present it."""

from __future__ import annotations

ADMIN_TOKEN = "komi-test-admin-token-0123456789"
AUTH_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def call(
    url: str, method: str = "GET", token: str = ADMIN_TOKEN, **kwargs: object
) -> tuple[int, object]:
    """One request presenting `token`: its status and its JSON (or text) answer."""
    import aiohttp

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
            text = await response.text()
            try:
                import json

                return response.status, json.loads(text)
            except ValueError:
                return response.status, text


async def mint_token(base_url: str, token: str = ADMIN_TOKEN, **body: object) -> dict:
    """`POST /tokens` with `token` (the admin's unless given); the answer, which must be 200."""
    status, answer = await call(f"{base_url}/tokens", "POST", token, json=body)
    assert status == 200, (status, answer)
    assert isinstance(answer, dict)
    return answer
