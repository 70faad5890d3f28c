"""The look-alike identity server's paths and client, apart from ``bench.idp`` itself:
the sites of ``bench.signin`` import these in their settings, and importing
``bench.idp`` would load its JOSE library into the anchor's workers (their RSS is
measured)."""

HOST = "/authentification-candidat"
OAUTH = f"{HOST}/connexion/oauth2"
REALM_PATH = f"{OAUTH}/realms/root/realms/individu"
USERINFO = "/api/partenaire/peconnect-individu/v1/userinfo"
CLIENT_ID = "ftauth-bench"
CLIENT_SECRET = "bench-secret-local-only"
