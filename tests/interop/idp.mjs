// An independent, OpenID-certified identity server (the npm package oidc-provider, pinned
// in package.json) set up like a France Travail realm, for tests/interop/.
//
// Like France Travail's /individu realm: the issuer carries the realm path
// (.../connexion/oauth2/realms/root/realms/individu), PKCE S256 is required, the client
// authenticates with client_secret_post, ID tokens are RS256, refresh tokens are issued,
// back-channel logout and RP-initiated logout (end session) are on.
//
// oidc-provider serves its own paths under the issuer; ftauth uses France Travail's.
// MAPPED PATHS (France Travail path -> oidc-provider route under the issuer):
//   GET  /connexion/oauth2/authorize?realm=/individu     -> /auth
//   POST /connexion/oauth2/access_token?realm=%2Findividu -> /token   (realm dropped)
//   GET  /connexion/oauth2/connect/jwk_uri?realm=...      -> /jwks
//   GET  /compte/deconnexion?redirect_uri=...             -> /session/end, with France
//        Travail's redirect_uri renamed post_logout_redirect_uri
//   GET  /partenaire/peconnect-individu/v1/userinfo       -> /me   (the API server's
//        userinfo: ftauth's API_URL points here too)
// Discovery needs no mapping: France Travail's discovery path is the issuer's.
//
// Environment: PORT, RP_URL (the site under test), CLIENT_ID, CLIENT_SECRET.
// Login and consent are oidc-provider's development interactions (any login, any password).

import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const { PORT, RP_URL, CLIENT_ID, CLIENT_SECRET } = process.env;
const ORIGIN = `http://localhost:${PORT}`;
const PREFIX = '/connexion/oauth2/realms/root/realms/individu';
const ISSUER = `${ORIGIN}${PREFIX}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-1', alg: 'RS256', use: 'sig' };

// The claims France Travail's individu userinfo returns.
const accounts = new Map();
async function findAccount(ctx, sub) {
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        given_name: 'Camille',
        family_name: `Interop ${sub}`,
        gender: 'female',
        email: `${sub}@interop.example`,
        email_verified: true,
        ...(accounts.get(sub) || {}),
      };
    },
  };
}

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${RP_URL}/ftauth/callback/individu/`],
      post_logout_redirect_uris: [`${RP_URL}/`],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'RS256',
      backchannel_logout_uri: `${RP_URL}/ftauth/backchannel-logout/individu/`,
      backchannel_logout_session_required: true,
    },
  ],
  jwks: { keys: [signingKey] },
  findAccount,
  scopes: ['openid', 'profile', 'email', 'api_peconnect-individuv1'],
  claims: {
    openid: ['sub'],
    profile: ['given_name', 'family_name', 'gender'],
    email: ['email', 'email_verified'],
  },
  pkce: { methods: ['S256'], required: () => true },
  // France Travail issues a refresh token with every authorization code exchange.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ttl: { AccessToken: 1500, IdToken: 9000, AuthorizationCode: 60 },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    userinfo: { enabled: true },
  },
  // Cookies of this server and the site's stay apart (different host names) anyway.
  cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.on('backchannel.error', (ctx, error) => console.error('backchannel.error', error));
provider.on('backchannel.success', (client) => console.log('backchannel.success', client.clientId));

const ROUTES = [
  ['/connexion/oauth2/authorize', '/auth', (q) => q],
  ['/connexion/oauth2/access_token', '/token', () => new URLSearchParams()],
  ['/connexion/oauth2/connect/jwk_uri', '/jwks', () => new URLSearchParams()],
  ['/compte/deconnexion', '/session/end', (q) => {
    if (q.has('redirect_uri')) {
      q.set('post_logout_redirect_uri', q.get('redirect_uri'));
      q.delete('redirect_uri');
    }
    return q;
  }],
  ['/partenaire/peconnect-individu/v1/userinfo', '/me', () => new URLSearchParams()],
];

const callback = provider.callback();
http
  .createServer((req, res) => {
    const url = new URL(req.url, ORIGIN);
    console.log(req.method, url.pathname);
    const route = ROUTES.find(([path]) => url.pathname === path);
    if (route) {
      const query = route[2](url.searchParams).toString();
      url.pathname = `${PREFIX}${route[1]}`;
      url.search = query ? `?${query}` : '';
    }
    if (!url.pathname.startsWith(PREFIX)) {
      res.writeHead(404).end();
      return;
    }
    // Mounted under the issuer's path, as express or koa-mount would do it.
    req.originalUrl = `${url.pathname}${url.search}`;
    req.url = `${url.pathname.slice(PREFIX.length) || '/'}${url.search}`;
    callback(req, res);
  })
  .listen(Number(PORT), '127.0.0.1', () => console.log(`ready ${ISSUER}`));
