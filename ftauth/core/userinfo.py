"""The userinfo call. For France Travail it is an API on api.francetravail.io,
not an endpoint of the identity server; the token goes in the header only
(RFC 6750 2.1: never in a query string, where it would reach access logs)."""

from __future__ import annotations

from typing import Any

from .errors import ApiError, InvalidResponse, TokenRejected
from .http import HttpClient, raise_for_transient


def fetch_userinfo(http: HttpClient, url: str, access_token: str) -> dict[str, Any]:
    response = http.get(
        url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    )
    if response.status_code == 401:
        raise TokenRejected("userinfo refused the access token")
    raise_for_transient(response, "userinfo")
    if response.status_code != 200:
        raise ApiError(response.status_code, None)
    try:
        data = response.json()
    except ValueError:
        raise InvalidResponse("userinfo answer is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidResponse("userinfo answer is not a JSON object")
    return data
