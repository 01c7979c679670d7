// Shared pieces of the auth tests: Secrets as the cluster snapshot holds them, requests as the pipeline builds
// them, local HTTP servers that are closed after each test, and password hashes made by real tools.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { secretSchema, type Secret } from '../../../cluster/model/secret.ts';
import type { HashScheme } from '../../../ingress/auth/htpasswd.ts';
import type { AuthRequest } from '../../../ingress/auth/types.ts';
import type { ObjectRef } from '../../../ingress/routes/types.ts';

/** A Secret with string data. */
export function secret(ref: ObjectRef, stringData: Record<string, string>): Secret {
  return secretSchema.parse({ metadata: { namespace: ref.namespace, name: ref.name }, stringData });
}

/** A lookup over a mutable map of Secrets by `namespace/name`. */
export function secretStore(): { secrets: Map<string, Secret>; lookup: (ref: ObjectRef) => Secret | undefined } {
  const secrets = new Map<string, Secret>();
  return { secrets, lookup: (ref) => secrets.get(`${ref.namespace}/${ref.name}`) };
}

/** A GET request for `https://app.example.com/path?q=1` from 203.0.113.7 with extra headers. */
export function authRequest(headers: AuthRequest['headers'] = {}, over: Partial<AuthRequest> = {}): AuthRequest {
  return {
    method: 'GET',
    url: '/path?q=1',
    host: 'app.example.com',
    proto: 'https',
    clientIP: '203.0.113.7',
    headers: { host: 'app.example.com', ...headers },
    ...over,
  };
}

/** An Authorization header for Basic credentials. */
export function basic(user: string, password: string): { authorization: string } {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}` };
}

/** Local HTTP servers for one test file; closeAll() in afterEach. */
export class Servers {
  readonly #open: Server[] = [];

  /** Starts a server on 127.0.0.1 with a random port; resolves to its base URL. */
  async start(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler);
    this.#open.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async closeAll(): Promise<void> {
    const servers = this.#open.splice(0);
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
  }
}

// Produced by real tools, not by the libraries under test:
//   openssl passwd -5 -salt saltsalt secret / openssl passwd -6 -salt saltsalt secret / -6 -salt abcdefgh 'pässwörd'
//   glibc crypt(3) via python3 crypt.crypt('secret', '$5$rounds=10000$saltsalt')
//   OpenBSD bcrypt test vector ("U*U", cost 5)
//   openssl passwd -apr1 -salt saltsalt secret / -apr1 -salt x secret / -apr1 -salt abcdefgh 'pässwörd' (UTF-8)
/** Password hashes made by real tools, not by the libraries under test. */
export const knownVectors: Array<{ name: string; password: string; hash: string; scheme: HashScheme; cost: number }> = [
  { name: 'openssl -5', password: 'secret', hash: '$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA', scheme: 'sha256-crypt', cost: 5000 },
  {
    name: 'openssl -6',
    password: 'secret',
    hash: '$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1',
    scheme: 'sha512-crypt',
    cost: 5000,
  },
  {
    name: 'openssl -6, UTF-8 password',
    password: 'pässwörd',
    hash: '$6$abcdefgh$qlUjQo8xiC5dmwOr49rtm.DQdv9onQYoWr0dgDR2SqMkw1296.hIZnRd/ltg71cpfDQGxCw0Bli1kXypCoIxg0',
    scheme: 'sha512-crypt',
    cost: 5000,
  },
  { name: 'glibc $5$ rounds=10000', password: 'secret', hash: '$5$rounds=10000$saltsalt$RUsnTSO2Cw.gkRW/RZSmG6BCeuh1a6eDbZfnX4oz1c5', scheme: 'sha256-crypt', cost: 10000 },
  { name: 'OpenBSD bcrypt vector', password: 'U*U', hash: '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', scheme: 'bcrypt', cost: 5 },
  { name: 'openssl -apr1 (htpasswd\'s default)', password: 'secret', hash: '$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0', scheme: 'apr1-md5', cost: 1000 },
  { name: 'openssl -apr1, short salt', password: 'secret', hash: '$apr1$x$12YdXEY0/hH4rDNkmZupO0', scheme: 'apr1-md5', cost: 1000 },
  { name: 'openssl -apr1, UTF-8 password', password: 'pässwörd', hash: '$apr1$abcdefgh$030j6I3f1zNCF9tihqdd11', scheme: 'apr1-md5', cost: 1000 },
];
