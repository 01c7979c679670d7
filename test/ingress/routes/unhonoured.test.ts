// ingress-nginx annotations netplane does not honour, through the real route compiler: those that change who may
// reach what or what a request does take the Ingress out of service with a problem naming them (the others keep
// working); those that only tune nginx, and names netplane does not know, are served and sorted for the info log.
import { describe, expect, it } from 'vitest';
import { captureLogger } from '../../helpers/wait.ts';
import { readsNginxName } from '../../../ingress/routes/annotations.ts';
import { IgnoredAnnotationLog, ignoredAnnotations, ignoredNames, refusals } from '../../../ingress/routes/unhonoured.ts';
import { compile, ingress, rule } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const web = (name: string, annotations: Record<string, string>) => ingress(name, { namespace: 'shop', annotations, rules: [rule(`${name}.com`, `Prefix / ${name}:80`)] });

describe('refused: the Ingress is not served, with a problem naming the annotation and why', () => {
  // [annotations, the refused key, a word of the reason]
  const cases: [Record<string, string>, string, string][] = [
    [{ [`${ngx}configuration-snippet`]: 'deny all;' }, 'configuration-snippet', 'nginx configuration'],
    [{ [`${ngx}server-snippet`]: 'location /admin { deny all; }\n' }, 'server-snippet', 'nginx configuration'],
    [{ [`${ngx}auth-url`]: 'https://auth.example.com/', [`${ngx}auth-snippet`]: 'proxy_set_header Foo 42;' }, 'auth-snippet', 'nginx configuration'],
    [{ [`${ngx}stream-snippet`]: 'server { listen 8000; }' }, 'stream-snippet', 'nginx configuration'],
    [{ [`${ngx}modsecurity-snippet`]: 'SecRuleEngine On' }, 'modsecurity-snippet', 'nginx configuration'],
    [{ [`${ngx}enable-modsecurity`]: 'true' }, 'enable-modsecurity', 'firewall'],
    [{ [`${ngx}enable-owasp-core-rules`]: 'true' }, 'enable-owasp-core-rules', 'firewall'],
    [{ [`${ngx}enable-modsecurity`]: 'yes' }, 'enable-modsecurity', 'firewall'],
    [{ [`${ngx}global-rate-limit`]: '100', [`${ngx}global-rate-limit-window`]: '1m' }, 'global-rate-limit', 'shared between replicas'],
    [{ [`${ngx}global-rate-limit-key`]: '$remote_addr' }, 'global-rate-limit-key', 'shared between replicas'],
    [{ [`${ngx}ssl-passthrough`]: 'true' }, 'ssl-passthrough', 'terminates TLS'],
  ];

  it.each(cases)('%j', (annotations, name, why) => {
    const { table } = compile([web('a', annotations), web('b', {})]);
    expect(table.problems).toHaveLength(1);
    const [p] = table.problems;
    expect([p!.ingress, p!.keptLastGood]).toEqual(['shop/a', false]);
    expect(p!.reason).toContain(`annotation ${ngx}${name} is ${JSON.stringify(annotations[ngx + name]!.trim()).slice(0, 40)}`);
    expect(p!.reason).toContain(why);
    expect(p!.reason).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(table.match('a.com', '/')).toBeUndefined();
    expect(table.match('b.com', '/')?.ingress).toBe('shop/b');
  });

  it('names every refused annotation in the table above (none is listed but untested)', () => {
    const tested = new Set(cases.map(([, name]) => name));
    for (const r of refusals) {
      const covered = r.name.startsWith('*') ? [...tested].some((n) => n.endsWith(r.name.slice(1))) : tested.has(r.name) || r.name.startsWith('global-rate-limit-');
      expect([r.name, covered]).toEqual([r.name, true]);
    }
  });
});

describe('served: values that ask for nothing, what netplane honours, tuning and unknown names', () => {
  const cases: [string, Record<string, string>][] = [
    ['snippets left empty', { [`${ngx}configuration-snippet`]: '', [`${ngx}server-snippet`]: '  \n' }],
    ['switches set to false', { [`${ngx}ssl-passthrough`]: 'false', [`${ngx}enable-modsecurity`]: 'False', [`${ngx}from-to-www-redirect`]: '0', [`${ngx}auth-always-set-cookie`]: 'false' }],
    ['limits set to 0', { [`${ngx}limit-rate`]: '0', [`${ngx}limit-rate-after`]: '0', [`${ngx}global-rate-limit`]: '0' }],
    ['rewrites switched off', { [`${ngx}proxy-cookie-path`]: 'off', [`${ngx}proxy-redirect-from`]: 'default', [`${ngx}auth-signin-redirect-param`]: 'rd' }],
    ['a header pattern under an exact value (ingress-nginx ignores the pattern)', { [`${ngx}canary-by-header`]: 'X-C', [`${ngx}canary-by-header-value`]: 'on', [`${ngx}canary-by-header-pattern`]: 'a|b' }],
    ['a header pattern, which netplane honours', { [`${ngx}canary-by-header`]: 'X-C', [`${ngx}canary-by-header-pattern`]: '^(a|b)$' }],
    ['auth-always-set-cookie with auth-url, which netplane honours', { [`${ngx}auth-url`]: 'https://auth.example.com/', [`${ngx}auth-always-set-cookie`]: 'true' }],
    ['intercept switch without custom-http-errors', { [`${ngx}disable-proxy-intercept-errors`]: 'true' }],
    ['intercept switch with custom-http-errors, which netplane honours', { [`${ngx}custom-http-errors`]: '503', [`${ngx}disable-proxy-intercept-errors`]: 'true' }],
    ['mirror-target, mirror-host and mirror-request-body, which netplane honours', { [`${ngx}mirror-target`]: 'https://test.example.com$request_uri', [`${ngx}mirror-host`]: 'test.example.com', [`${ngx}mirror-request-body`]: 'off' }],
    ['hash subsets without upstream-hash-by', { [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: '3' }],
    ['hash subsets with upstream-hash-by, which netplane honours', { [`${ngx}upstream-hash-by`]: '$request_uri', [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: '2' }],
    ['satisfy and auth-tls-pass-certificate-to-upstream, which netplane honours', { [`${ngx}satisfy`]: 'any', [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-pass-certificate-to-upstream`]: 'true' }],
    ['auth-tls-match-cn, which netplane honours', { [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-match-cn`]: 'CN=alice' }],
    ['auth-secret-type auth-file, the default', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'users', [`${ngx}auth-secret-type`]: 'auth-file' }],
    ['auth-secret-type auth-map, which netplane honours', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'users', [`${ngx}auth-secret-type`]: 'auth-map' }],
    ['buffer and nginx tuning', { [`${ngx}proxy-buffering`]: 'on', [`${ngx}proxy-buffer-size`]: '64k', [`${ngx}proxy-buffers-number`]: '8', [`${ngx}proxy-http-version`]: '1.0', [`${ngx}client-body-buffer-size`]: '1m', [`${ngx}proxy-request-buffering`]: 'off' }],
    ['ConfigMap header annotations left empty, which netplane honours (they name no ConfigMap)', { [`${ngx}custom-headers`]: '', [`${ngx}auth-url`]: 'https://auth.example.com/', [`${ngx}auth-proxy-set-headers`]: '' }],
    ['names netplane does not know', { [`${ngx}some-future-thing`]: 'x', [`${ngx}secure-backends`]: 'true' }],
  ];

  it.each(cases)('%s', (_what, annotations) => {
    const { table } = compile([web('a', annotations)]);
    expect(table.problems).toEqual([]);
    expect(table.match('a.com', '/')?.ingress).toBe('shop/a');
  });

  it('sorts what netplane does not read into tuning and unknown, leaving out what it reads', () => {
    const annotations = {
      [`${ngx}proxy-buffer-size`]: '64k',
      [`${ngx}proxy-buffering`]: 'on',
      [`${ngx}ssl-passthrough`]: 'false',
      [`${ngx}sattisfy`]: 'any',
      [`${ngx}satisfy`]: 'any',
      [`${ngx}limit-rps`]: '5',
      'netplane.io/limit-rpm': '60',
      'example.com/other': 'x',
    };
    expect(ignoredAnnotations(annotations, readsNginxName)).toEqual({
      tuning: [`${ngx}proxy-buffer-size`, `${ngx}proxy-buffering`, `${ngx}ssl-passthrough`],
      unknown: [`${ngx}sattisfy`],
    });
    // Every ignored tuning name is one netplane does not read (else it would be listed as ignored while honoured).
    expect(ignoredNames.filter(readsNginxName)).toEqual([]);
    expect(refusals.map((r) => r.name).filter(readsNginxName)).toEqual([]);
  });

  it('logs the ignored ones at info once per Ingress, again only when they change', () => {
    const { log, records } = captureLogger();
    const ignoredLog = new IgnoredAnnotationLog(readsNginxName);
    const a = web('a', { [`${ngx}proxy-buffer-size`]: '64k', [`${ngx}limit-rps`]: '5' });
    const plain = web('b', { [`${ngx}limit-rps`]: '5' });
    const served = new Map([['shop/a', a], ['shop/b', plain]]);
    ignoredLog.report(served, log);
    ignoredLog.report(served, log);
    const changed = web('a', { [`${ngx}proxy-buffer-size`]: '64k', [`${ngx}x-made-up`]: '1' });
    ignoredLog.report(new Map([['shop/a', changed]]), log);
    expect(records.map((l) => [l.level, l.ingress, l.ignored, l.unknown])).toEqual([
      [30, 'shop/a', [`${ngx}proxy-buffer-size`], []],
      [30, 'shop/a', [`${ngx}proxy-buffer-size`], [`${ngx}x-made-up`]],
    ]);
    expect(String(records[1]!.msg)).toContain('not known to netplane');
  });
});
