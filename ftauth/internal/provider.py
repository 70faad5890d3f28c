"""A realm's identity server as seen from Django: metadata, keys, token validation.

Joins the protocol core to the settings and Django's cache (guarded: an
unreachable cache means fetching again, see ``ftauth.cache``). ID tokens, fresh
or refreshed, come from the token endpoint and go through
:meth:`Provider.validate_id_token`; tokens anyone can post (logout tokens) go
through :meth:`Provider.decode_jwt`, whose JWKS refetches are rate-limited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..conf import FTAuthSettings, get_http, get_settings
from ..core import discovery, idtoken, userinfo
from ..core.http import HttpClient
from ..core.jwt import verify_signature
from ..core.realms import Realm
from .cache import GuardedCache


@dataclass
class Provider:
    realm: Realm
    conf: FTAuthSettings
    http: HttpClient
    _metadata: discovery.ProviderMetadata | None = field(default=None, init=False, repr=False)
    _cache: GuardedCache | None = field(default=None, init=False, repr=False)

    @property
    def cache(self) -> GuardedCache:
        # One per provider: after a failure the cache is left alone for this request.
        if self._cache is None:
            self._cache = GuardedCache(self.conf.cache_alias)
        return self._cache

    @property
    def client_id(self) -> str:
        """This provider's registration (ProConnect has its own), else the site's."""
        return self.realm.client_id or self.conf.client_id

    @property
    def client_secret(self) -> str:
        return self.realm.client_secret or self.conf.client_secret

    def endpoints(self) -> Realm:
        """The realm with its endpoints as its server names them: from discovery when
        its data says so (ProConnect), else the known paths, without asking anyone."""
        if not self.realm.discovered_endpoints:
            return self.realm
        return self.metadata().endpoints_of(self.realm)

    def metadata(self) -> discovery.ProviderMetadata:
        """From the cache once per provider (one request's worth of work)."""
        if self._metadata is None:
            self._metadata = self._fetch_metadata()
        return self._metadata

    def _fetch_metadata(self) -> discovery.ProviderMetadata:
        return discovery.get_metadata(
            self.realm,
            self.http,
            self.cache,
            ttl=self.conf.jwks_cache_ttl,
            explicit_issuer=self.realm.issuer_is_configured,
        )

    def jwks(self, refresh: bool = False, *, rate_limited: bool = True) -> dict[str, Any]:
        return discovery.get_jwks(
            self.metadata().jwks_uri,
            self.http,
            self.cache,
            ttl=self.conf.jwks_cache_ttl,
            refetch_interval=self.conf.jwks_refetch_interval,
            refresh=refresh,
            rate_limited=rate_limited,
        )

    def _token_endpoint_jwks(self, refresh: bool = False) -> dict[str, Any]:
        # The token endpoint's answer is authenticated by TLS and comes once per
        # exchange: an unknown kid there is a key rotation, always worth a refetch.
        return self.jwks(refresh, rate_limited=False)

    def rules(self) -> idtoken.IdTokenRules:
        return idtoken.IdTokenRules(
            issuer=self.metadata().issuer,
            client_id=self.client_id,
            allowed_algorithms=self.realm.id_token_algorithms,
            leeway=self.conf.clock_leeway,
            max_age=self.conf.id_token_max_age,
            trusted_audiences=self.conf.trusted_audiences,
        )

    def decode_jwt(self, token: str) -> dict[str, Any]:
        """Signature and algorithm checks only, for a token anyone can post (a logout
        token): its unknown ``kid`` refetches the JWKS only within the budget.
        The caller checks the claims."""
        return verify_signature(
            token,
            allowed_algorithms=self.realm.id_token_algorithms,
            jwks_source=self.jwks,
            client_secret=self.client_secret,
        )

    def validate_id_token(
        self, id_token: str, *, nonce: str | None, token_response_nonce: str | None = None
    ) -> dict[str, Any]:
        """OIDC Core 3.1.3.7 in full (``nonce=None`` only for refreshed tokens)."""
        return idtoken.validate_id_token(
            id_token,
            self.rules(),
            jwks_source=self._token_endpoint_jwks,
            client_secret=self.client_secret,
            nonce=nonce,
            token_response_nonce=token_response_nonce,
        )

    def userinfo_claims(self, answer: Any, *, sub: str) -> dict[str, Any]:
        """A userinfo answer's claims: a signed JWT verified like an ID token when the
        realm's data says so (ProConnect), JSON otherwise; about ``sub`` either way.
        The rules (the issuer, from discovery) are read only for a signed answer: a
        consent check on France Travail's realms asks nothing more than userinfo."""
        signed = self.realm.userinfo_jwt
        return userinfo.userinfo_claims(
            answer,
            signed=signed,
            rules=self.rules() if signed else None,
            jwks_source=self._token_endpoint_jwks,
            client_secret=self.client_secret,
            sub=sub,
        )


def get_provider(realm_name: str) -> Provider:
    """The provider of a known realm (:class:`KeyError` for an unknown one).

    Made per use: it memoizes the metadata, so it must not outlive a request.
    """
    conf = get_settings()
    return Provider(realm=conf.realm(realm_name), conf=conf, http=get_http())
