// node oidc-provider on 127.0.0.1, for the interoperability tests.
//
// Listens on a free port, then prints one line of JSON on stdout: the
// issuer and the clients it registered. It stops when its stdin closes
// (so it never outlives the test run that started it) or on SIGTERM.
//
// The provider keeps its library defaults wherever a flow's behaviour is
// under test: refresh tokens rotate for public clients only, a reused
// refresh token or authorization code revokes the whole grant, and
// offline_access needs prompt=consent. Sign-in and consent are the
// library's own development pages, which take any login and password.

import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const REDIRECT_URI = process.env.OP_REDIRECT_URI;
const CONFIDENTIAL_SECRET = process.env.OP_CONFIDENTIAL_SECRET;

const clients = [
  {
    client_id: 'public-app',
    token_endpoint_auth_method: 'none',
  },
  {
    client_id: 'confidential-app',
    client_secret: CONFIDENTIAL_SECRET,
    // The shipped flows send the client secret in the form by default.
    token_endpoint_auth_method: 'client_secret_post',
  },
  {
    client_id: 'basic-app',
    client_secret: CONFIDENTIAL_SECRET,
    // An engine whose client has client_auth "basic" sends it in a header.
    token_endpoint_auth_method: 'client_secret_basic',
  },
].map((client) => ({
  ...client,
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
}));

const server = createServer();

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    cookies: { keys: [process.env.OP_COOKIE_KEY] },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: { openid: ['sub'], email: ['email'] },
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, email: id }),
    }),
    features: { devInteractions: { enabled: true } },
  });
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer, clients: clients.map((c) => c.client_id) }));
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
