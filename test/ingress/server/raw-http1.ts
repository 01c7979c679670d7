// For tests of what node:http's parser meets before any request exists: bytes written raw to the gateway's HTTP
// listener, or to its HTTPS one as HTTP/1.1 (ALPN), and everything the gateway answers until it closes.
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** The gateway's two listeners, as GatewayProcess and FixedPortGateway give them. */
export interface Listeners {
  http: number;
  https: number;
}

/** Sends `text` on a new connection (TLS with SNI `servername` when `tls`); resolves with all the answer, latin1. */
export function rawExchange(gw: Listeners, text: string, tls: boolean, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: Socket = tls
      ? tlsConnect({ host: '127.0.0.1', port: gw.https, servername, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false }, () => s.write(text))
      : tcpConnect(gw.http, '127.0.0.1', () => s.write(text));
    let got = '';
    s.setTimeout(5000, () => s.destroy(new Error(`no answer to ${JSON.stringify(text)}`)));
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
}

/** The code of every status line in an answer. */
export const statusCodes = (answer: string): number[] => [...answer.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
