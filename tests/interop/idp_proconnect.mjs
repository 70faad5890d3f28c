// oidc-provider (the OpenID-certified npm server, pinned in package.json) set up like
// ProConnect, for tests/interop/test_proconnect_interop.py.
//
// Like ProConnect (../shared/PROCONNECT.md): everything under /api/v2, found by
// discovery (ftauth's ``proconnect`` realm reads its endpoints there, so no path is
// mapped); ID tokens and userinfo answers signed ES256, userinfo as application/jwt;
// acr levels eidas1 and eidas1-mfa, asked through the ``claims`` parameter; a refresh
// token on every code exchange; sign-out with post_logout_redirect_uri and state; no
// back-channel logout; no consent screen (the grant is given with the login).
//
// The login page is this file's, not oidc-provider's development one, so that the
// session can carry an acr: the form's ``login`` field names the person, ``acr`` the
// level their identity provider reached (eidas1 unless the form says otherwise).
//
// Environment: PORT, RP_URL (the site under test), CLIENT_ID, CLIENT_SECRET.

import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const { PORT, RP_URL, CLIENT_ID, CLIENT_SECRET } = process.env;
const ORIGIN = `http://localhost:${PORT}`;
const PREFIX = '/api/v2';
const ISSUER = `${ORIGIN}${PREFIX}`;

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'pc-interop-1', alg: 'ES256', use: 'sig' };

// ProConnect's claims for a France Travail advisor.
async function findAccount(ctx, sub) {
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        email: `${sub}@francetravail.example`,
        given_name: 'Aline',
        usual_name: `Interop ${sub}`,
        siret: '13000548100010',
        idp_id: 'france-travail-idp',
        custom: { structureTravail: '75011' },
      };
    },
  };
}

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${RP_URL}/ftauth/callback/proconnect/`],
      post_logout_redirect_uris: [`${RP_URL}/ftauth/logout/done/`],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'ES256',
      userinfo_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [signingKey] },
  findAccount,
  scopes: ['openid', 'email', 'given_name', 'usual_name', 'siret', 'idp_id', 'custom'],
  claims: {
    openid: ['sub'],
    email: ['email'],
    given_name: ['given_name'],
    usual_name: ['usual_name'],
    siret: ['siret'],
    idp_id: ['idp_id'],
    custom: ['custom'],
    acr: null,
    amr: null,
  },
  acrValues: ['eidas1', 'eidas1-mfa'],
  pkce: { methods: ['S256'], required: () => false },
  // ProConnect always issues a refresh token.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ttl: { AccessToken: 3600, IdToken: 3600, AuthorizationCode: 60 },
  interactions: { url: (ctx, interaction) => `${PREFIX}/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    claimsParameter: { enabled: true },
    jwtUserinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    userinfo: { enabled: true },
    backchannelLogout: { enabled: false },
  },
  cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

function readForm(req) {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(new URLSearchParams(body)));
  });
}

// The login page, then the grant given at once (ProConnect shows no consent screen).
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>ProConnect (interop)</title>
<form method="post" action="${PREFIX}/interaction/${details.uid}">
<input name="login" value=""><input name="acr" value="eidas1"><button>OK</button></form>`);
    return;
  }
  const form = await readForm(req);
  const accountId = form.get('login') || 'someone';
  const acr = form.get('acr') || 'eidas1';
  const { params, prompt } = details;
  const grant = new provider.Grant({ accountId, clientId: params.client_id });
  grant.addOIDCScope(params.scope);
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  grant.addOIDCClaims(['acr', 'amr']);
  const grantId = await grant.save();
  const amr = acr.endsWith('-mfa') ? ['pwd', 'otp', 'mfa'] : ['pwd'];
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId, acr, amr }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const callback = provider.callback();
http
  .createServer((req, res) => {
    const url = new URL(req.url, ORIGIN);
    console.log(req.method, url.pathname);
    if (url.pathname.startsWith(`${PREFIX}/interaction/`)) {
      interaction(req, res).catch((error) => {
        console.error('interaction', error);
        res.writeHead(500).end();
      });
      return;
    }
    if (!url.pathname.startsWith(PREFIX)) {
      res.writeHead(404).end();
      return;
    }
    req.originalUrl = `${url.pathname}${url.search}`;
    req.url = `${url.pathname.slice(PREFIX.length) || '/'}${url.search}`;
    callback(req, res);
  })
  .listen(Number(PORT), '127.0.0.1', () => console.log(`ready ${ISSUER}`));
