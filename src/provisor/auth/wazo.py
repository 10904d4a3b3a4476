"""The wazo-auth token backend: tokens, ACLs and tenants checked against a wazo-auth server.

It speaks wazo-auth's 0.1 API as wazo-provd does (``HEAD /0.1/token/{token}?scope=…&tenant=…``,
``GET /0.1/token/{token}``, ``GET /0.1/tenants`` with ``Wazo-Tenant``, ``POST /0.1/token`` with
the service's own credentials) but never on a blocking path: calls are async with a timeout,
answers (positive and negative) are cached briefly, and concurrent identical checks share one
request, so a slow auth server cannot stall the REST API, let alone phone provisioning.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from provisor.auth.base import TokenInfo, token_fingerprint
from provisor.errors import Unauthorized
from provisor.logs import protect_third_party_loggers

__all__ = ["WazoAuthBackend"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_UNAVAILABLE = "Unauthorized: authentication server unavailable"


class _Cache:
    """A small TTL + LRU cache of results (or exceptions)."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Any]:
        item = self._items.get(key)
        if item is None or time.monotonic() - item[0] > self.ttl:
            self._items.pop(key, None)
            return False, None
        self._items.move_to_end(key)
        return True, item[1]

    def drop_token(self, token: str) -> None:
        """Forget every result about this token (its keys start with the token's own hash)."""
        mark = WazoAuthBackend.token_mark(token)
        for key in [k for k in self._items if k.startswith(mark)]:
            del self._items[key]

    def put(self, key: str, value: Any) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class WazoAuthBackend:
    """Checks REST API tokens with a wazo-auth server."""

    def __init__(
        self,
        url: str,
        key_file: Path | None,
        *,
        cache_ttl: float = 10.0,
        timeout: float = 3.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        protect_third_party_loggers()  # httpx logs each URL, and ours carry the token
        self.url = url.rstrip("/")
        self.key_file = key_file
        self.timeout = timeout
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._cache = _Cache(cache_ttl)
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._service: tuple[str, str, float] | None = None  # token, tenant, expires (monotonic)

    # -- plumbing ------------------------------------------------------------------------------

    async def _once(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """Cached result of ``fetch``; concurrent callers share one request."""
        hit, value = self._cache.get(key)
        if hit:
            if isinstance(value, Exception):
                raise value
            return value  # type: ignore[no-any-return]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await fetch()
        except Unauthorized as exc:
            if str(exc) != _UNAVAILABLE:  # a down server is not remembered
                self._cache.put(key, exc)
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        else:
            self._cache.put(key, result)
            future.set_result(result)
            return result
        finally:
            self._inflight.pop(key, None)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await asyncio.wait_for(
                self._client.request(method, f"{self.url}{path}", **kwargs), self.timeout
            )
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            log.warning(
                "wazo-auth %s %s failed: %s", method, path.split("/token/")[0], type(exc).__name__
            )
            raise Unauthorized(_UNAVAILABLE) from None

    @staticmethod
    def token_mark(token: str) -> str:
        """The start of every cache key about ``token`` (a hash: the cache holds no token)."""
        return hashlib.sha256(token.encode()).hexdigest()[:32] + ":"

    @staticmethod
    def _key(kind: str, token: str, *rest: str | None) -> str:
        tail = "\x00".join([kind, *(p or "" for p in rest)])
        return WazoAuthBackend.token_mark(token) + hashlib.sha256(tail.encode()).hexdigest()

    # -- AuthBackend ---------------------------------------------------------------------------

    async def _token_info(self, token: str) -> TokenInfo:
        async def fetch() -> TokenInfo:
            r = await self._request("GET", f"/0.1/token/{token}")
            if r.status_code != 200:
                raise Unauthorized("Unauthorized: unknown or expired token")
            data = r.json().get("data", {})
            tenant = (data.get("metadata") or {}).get("tenant_uuid")
            if not tenant:
                raise Unauthorized("Unauthorized: token has no tenant")
            return TokenInfo(
                tenant_uuid=tenant, acl=tuple(data.get("acl") or ()), user=data.get("auth_id")
            )

        return await self._once(self._key("info", token), fetch)

    async def authorize(
        self, token: str | None, required_acl: str, tenant_uuid: str | None = None
    ) -> TokenInfo:
        """HEAD the token with the ACL (and tenant); then its tenant from GET."""
        if not token:
            raise Unauthorized("Unauthorized: no X-Auth-Token")

        async def check() -> bool:
            params = {"scope": required_acl}
            if tenant_uuid:
                params["tenant"] = tenant_uuid
            r = await self._request("HEAD", f"/0.1/token/{token}", params=params)
            if r.status_code == 204:
                return True
            if r.status_code == 403:
                raise Unauthorized(f"Unauthorized: missing permission {required_acl}")
            if r.status_code == 404:
                raise Unauthorized("Unauthorized: unknown or expired token")
            raise Unauthorized(f"Unauthorized: authentication server answered {r.status_code}")

        await self._once(self._key("check", token, required_acl, tenant_uuid), check)
        log.debug("token %s allowed %s", token_fingerprint(token), required_acl)
        return await self._token_info(token)

    async def visible_tenants(self, token: str, tenant_uuid: str) -> AbstractSet[str]:
        """The tenant and its sub-tenants, as wazo-auth lists them for this token."""

        async def fetch() -> frozenset[str]:
            r = await self._request(
                "GET",
                "/0.1/tenants",
                params={"recurse": "true"},
                headers={"X-Auth-Token": token, "Wazo-Tenant": tenant_uuid},
            )
            if r.status_code != 200:
                raise Unauthorized("Unauthorized: tenant not visible to this token")
            items = r.json().get("items", [])
            return frozenset(
                {tenant_uuid, *(i["uuid"] for i in items if isinstance(i, dict) and "uuid" in i)}
            )

        return set(await self._once(self._key("tenants", token, tenant_uuid), fetch))

    async def _service_token(self) -> tuple[str, str]:
        if self._service and self._service[2] - time.monotonic() > 60:
            return self._service[0], self._service[1]
        if self.key_file is None:
            raise Unauthorized("Unauthorized: no service key file configured (auth.key_file)")
        try:
            creds = yaml.safe_load(self.key_file.read_text())
            service_id, service_key = str(creds["service_id"]), str(creds["service_key"])
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise Unauthorized(f"Unauthorized: cannot read the service key file: {exc}") from None
        r = await self._request(
            "POST", "/0.1/token", auth=(service_id, service_key), json={"expiration": 3600}
        )
        if r.status_code not in (200, 201):
            raise Unauthorized(f"Unauthorized: service token refused ({r.status_code})")
        data = r.json()["data"]
        lifetime = float(data.get("expires_in") or data.get("utc_expires_in") or 3600)
        tenant = (data.get("metadata") or {}).get("tenant_uuid", "")
        self._service = (data["token"], tenant, time.monotonic() + lifetime)
        return data["token"], tenant

    async def login(self, username: str, password: str, expiration: int) -> str:
        """A wazo-auth token for a user's name and password (the console's sign-in); the
        password is sent to wazo-auth only, never kept or logged."""
        r = await self._request(
            "POST", "/0.1/token", auth=(username, password), json={"expiration": expiration}
        )
        if r.status_code not in (200, 201):
            raise Unauthorized("Unauthorized: wrong username or password")
        try:
            token = r.json()["data"]["token"]
        except (ValueError, KeyError, TypeError):
            raise Unauthorized("Unauthorized: wazo-auth answered without a token") from None
        if not isinstance(token, str) or not token:
            raise Unauthorized("Unauthorized: wazo-auth answered without a token")
        return token

    async def logout(self, token: str) -> bool:
        """Revoke a token this server obtained with :meth:`login` (the console's sign-out), and
        forget what was cached of it so it is refused here at once; False when wazo-auth could
        not be told (the token then lives until its own expiry, the session's lifetime)."""
        self._cache.drop_token(token)
        try:
            r = await self._request("DELETE", f"/0.1/token/{token}")
        except Unauthorized:  # unreachable: already logged without the token
            return False
        if r.status_code in (200, 204, 404):  # 404: it had expired already
            return True
        log.warning(
            "wazo-auth refused to revoke token %s (%d)", token_fingerprint(token), r.status_code
        )
        return False

    async def list_tenants(self) -> set[str] | None:
        """Every tenant, listed with provisor's own service token."""
        token, _ = await self._service_token()
        r = await self._request(
            "GET", "/0.1/tenants", params={"recurse": "true"}, headers={"X-Auth-Token": token}
        )
        if r.status_code != 200:
            return None
        return {i["uuid"] for i in r.json().get("items", []) if isinstance(i, dict) and "uuid" in i}

    async def master_tenant(self) -> str:
        """The tenant of provisor's service token."""
        _, tenant = await self._service_token()
        return tenant

    def forget(self) -> None:
        """Drop every cached answer of wazo-auth (a tenant was deleted: its tokens, and the
        subtrees that held it, must be asked again)."""
        self._cache = _Cache(self._cache.ttl, self._cache.size)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
