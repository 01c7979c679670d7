// upstream-hash-by expressions: read into parts (or refused with one sentence naming the annotation, its value and
// what is allowed), then filled in per request as data, as nginx fills in its variables.
import { describe, expect, it } from 'vitest';
import { AnnotationError } from '../../../ingress/routes/errors.ts';
import { hashKeyOf, readHashKey, type HashFacts } from '../../../ingress/routes/hash-key.ts';
import type { HashKeyPart } from '../../../ingress/routes/types.ts';

const key = 'nginx.ingress.kubernetes.io/upstream-hash-by';
const read = (value: string) => readHashKey({ key, value });

describe('readHashKey', () => {
  const cases: [string, HashKeyPart[]][] = [
    ['$request_uri', [{ variable: 'request_uri' }]],
    ['$remote_addr', [{ variable: 'remote_addr' }]],
    ['$binary_remote_addr', [{ variable: 'binary_remote_addr' }]],
    ['$host$request_uri', [{ variable: 'host' }, { variable: 'request_uri' }]],
    ['$request_uri$host', [{ variable: 'request_uri' }, { variable: 'host' }]],
    ['${request_uri}-text-value', [{ variable: 'request_uri' }, '-text-value']],
    ['$http_x_user', [{ header: 'x-user' }]],
    ['$http_X_Tenant_ID', [{ header: 'x-tenant-id' }]],
    ['$cookie_JSESSIONID', [{ cookie: 'JSESSIONID' }]],
    ['$arg_user', [{ arg: 'user' }]],
    ['v1-$arg_user-$http_x_region', ['v1-', { arg: 'user' }, '-', { header: 'x-region' }]],
    ['${remote_addr}:${http_x_api_client}', [{ variable: 'remote_addr' }, ':', { header: 'x-api-client' }]],
    ['$scheme$http_host$uri$is_args$args', [{ variable: 'scheme' }, { variable: 'http_host' }, { variable: 'uri' }, { variable: 'is_args' }, { variable: 'args' }]],
  ];
  it.each(cases)('%s', (value, parts) => {
    expect(read(value)).toEqual(parts);
  });

  // [value, a word of the sentence]
  const refused: [string, string][] = [
    ['$request_id', '$request_id is not a variable netplane hashes by'],
    ['$remote_user', '$remote_user is not a variable netplane hashes by'],
    ['$http_', '$http_ is not a variable'],
    ['$cookie_', '$cookie_ is not a variable'],
    ['$ssl_client_s_dn', 'not a variable netplane hashes by'],
    ['request_uri', 'uses no variable'],
    ['', 'allowed is an nginx expression'],
    ['$', 'must start a variable'],
    ['${request_uri', 'must start a variable'],
    ['$request_uri $host', 'allowed is an nginx expression'],
    ['$host\u00e9', 'allowed is an nginx expression'],
  ];
  it.each(refused)('refuses %j', (value, why) => {
    let error: unknown;
    try {
      read(value);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AnnotationError);
    expect((error as AnnotationError).message).toContain(`annotation ${key} is ${JSON.stringify(value)}`);
    expect((error as AnnotationError).message).toContain(why);
    expect((error as AnnotationError).message).toContain('$request_uri');
  });
});

describe('hashKeyOf', () => {
  const facts: HashFacts = {
    clientIP: '203.0.113.9',
    host: 'shop.example.com',
    hostHeader: 'Shop.Example.com:8443',
    routeHost: '*.example.com',
    proto: 'https',
    method: 'POST',
    path: '/cart/items',
    query: '?User=alice&page=2&user=bob&flag',
    headers: { 'x-user': 'u-17', 'x-multi': ['a', 'b'], cookie: 'theme=dark; JSESSIONID=abc123; jsessionid=late' },
  };
  const cases: [string, string][] = [
    ['$remote_addr', '203.0.113.9'],
    ['$binary_remote_addr', '203.0.113.9'],
    ['$host', 'shop.example.com'],
    ['$http_host', 'Shop.Example.com:8443'],
    ['$server_name', '*.example.com'],
    ['$scheme', 'https'],
    ['$request_method', 'POST'],
    ['$request_uri', '/cart/items?User=alice&page=2&user=bob&flag'],
    ['$uri$is_args$args', '/cart/items?User=alice&page=2&user=bob&flag'],
    ['$query_string', 'User=alice&page=2&user=bob&flag'],
    ['$http_x_user', 'u-17'],
    ['$http_x_multi', 'a, b'],
    ['$http_x_missing', ''],
    ['$cookie_JSESSIONID', 'abc123'],
    ['$cookie_jsessionid', 'abc123'],
    ['$cookie_none', ''],
    ['$arg_user', 'alice'],
    ['$arg_page', '2'],
    ['$arg_flag', ''],
    ['$arg_pag', ''],
    ['$host$request_uri', 'shop.example.com/cart/items?User=alice&page=2&user=bob&flag'],
    ['${http_x_user}-v2', 'u-17-v2'],
  ];
  it.each(cases)('%s', (value, want) => {
    expect(hashKeyOf(read(value), facts)).toBe(want);
  });

  it('is "" and "?"-less for a request without a query', () => {
    expect(hashKeyOf(read('$uri$is_args$args|$arg_x'), { ...facts, query: '' })).toBe('/cart/items|');
  });
});
