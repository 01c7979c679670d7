import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionCap, ConnectionCapError } from '../../../ingress/limits/connection-cap.ts';
import { waitFor } from '../../helpers/wait.ts';

describe('ConnectionCap', () => {
  it('counts per IP, refuses over the cap, and forgets IPs with nothing open', () => {
    const cap = new ConnectionCap(2);
    const steps: Array<['acquire' | 'release', string, boolean | undefined, number]> = [
      ['acquire', 'a', true, 1],
      ['acquire', 'a', true, 1],
      ['acquire', 'a', false, 1],
      ['acquire', 'b', true, 2],
      ['release', 'a', undefined, 2],
      ['acquire', 'a', true, 2],
      ['release', 'a', undefined, 2],
      ['release', 'a', undefined, 1],
      ['release', 'a', undefined, 1],
      ['release', 'b', undefined, 0],
      ['acquire', 'a', true, 1],
    ];
    for (const [op, ip, want, size] of steps) {
      const got = op === 'acquire' ? cap.acquire(ip) : cap.release(ip);
      expect([got, cap.size]).toEqual([want, size]);
    }
    expect(cap.count('a')).toBe(1);
  });

  it('Infinity counts without a cap', () => {
    const cap = new ConnectionCap(Infinity);
    for (let i = 0; i < 1000; i++) expect(cap.acquire('a')).toBe(true);
    expect(cap.count('a')).toBe(1000);
  });

  for (const bad of [0, -1, 1.5, Number.NaN]) {
    it(`refuses a cap of ${bad}`, () => {
      expect(() => new ConnectionCap(bad)).toThrow(ConnectionCapError);
    });
  }
});

describe('ConnectionCap on a real server', () => {
  let server: Server | undefined;
  const clients: Socket[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  it('a client over the cap is closed at once; closing one lets the next in', async () => {
    const cap = new ConnectionCap(2);
    server = createServer((sock) => {
      const ip = sock.remoteAddress ?? '';
      if (!cap.acquire(ip)) {
        sock.end('busy\n');
        return;
      }
      sock.once('close', () => cap.release(ip));
      sock.write('ok\n');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const open = () =>
      new Promise<[Socket, string]>((resolve) => {
        const s = connect(port, '127.0.0.1');
        clients.push(s);
        s.once('data', (d) => resolve([s, d.toString().trim()]));
      });
    const [first, a] = await open();
    const [, b] = await open();
    const [, c] = await open();
    expect([a, b, c]).toEqual(['ok', 'ok', 'busy']);
    first.destroy();
    await waitFor('the closed connection to be released', () => cap.count('127.0.0.1') === 1);
    const [, d] = await open();
    expect(d).toBe('ok');
    expect(cap.size).toBe(1);
    expect(cap.count('127.0.0.1')).toBe(2);
  });
});
