// custom-headers on the response: whatever writes it, in whichever form writeHead is given its headers, the route's
// headers win over those of the same name, and nothing else is touched (a real HTTP server and client).
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forceResponseHeaders, withoutNames } from '../../../ingress/server/custom-headers.ts';

describe('withoutNames', () => {
  const names = new Set(['x-a']);
  it.each([
    ['an object', { 'X-A': '2', 'x-b': '3' }, { 'x-b': '3' }],
    ['a flat list', ['X-A', '2', 'x-b', '3', 'x-a', '4'], ['x-b', '3']],
    ['a list of pairs', [['x-a', '2'], ['x-b', '3']], [['x-b', '3']]],
    ['nothing', undefined, undefined],
  ])('%s', (_what, given, want) => {
    expect(withoutNames(given as never, names)).toEqual(want);
  });
});

describe('forceResponseHeaders', () => {
  const writers: Record<string, (res: ServerResponse) => void> = {
    object: (res) => res.writeHead(500, { 'X-Frame-Options': 'SAMEORIGIN', 'x-b': '3' }).end('x'),
    list: (res) => res.writeHead(200, ['x-frame-options', 'SAMEORIGIN', 'x-b', '3']).end('x'),
    message: (res) => res.writeHead(404, 'Nope', { 'x-frame-options': 'SAMEORIGIN', 'x-b': '3' }).end('x'),
    setHeader: (res) => {
      res.setHeader('X-Frame-Options', 'SAMEORIGIN');
      res.setHeader('x-b', '3');
      res.end('x');
    },
  };
  let port = 0;
  const server = createServer((req, res) => {
    forceResponseHeaders(res, { 'x-frame-options': 'DENY' });
    writers[req.url!.slice(1)]!(res);
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it.each(Object.keys(writers))('wins over %s', async (writer) => {
    const r = await request(`http://127.0.0.1:${port}/${writer}`);
    await r.body.dump();
    expect([r.headers['x-frame-options'], r.headers['x-b']]).toEqual(['DENY', '3']);
  });
});
