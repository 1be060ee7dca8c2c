"""Requests to the server extension's REST API, shared by the server tests."""

import json

from tornado.httpclient import HTTPClientError

API = ("nbdistill", "api")


async def get_json(jp_fetch, *parts, **kwargs):
    response = await jp_fetch(*API, *parts, **kwargs)
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def status_of(jp_fetch, *parts, method="GET", body=None, **kwargs):
    """The HTTP status code of a request that may fail."""
    try:
        response = await jp_fetch(*API, *parts, method=method, body=body, **kwargs)
    except HTTPClientError as exc:
        return exc.code
    return response.code


async def raw(http_server_client, jp_base_url, jp_auth_header, path):
    """A GET on ``path`` exactly as written (no client-side escaping of ``%`` or ``..``)."""
    url = jp_base_url.rstrip("/") + "/nbdistill/api/" + path
    return await http_server_client.fetch(url, headers=jp_auth_header, raise_error=False)
