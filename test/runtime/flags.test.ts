import { describe, expect, it } from 'vitest';
import { UsageError } from '../../runtime/errors.ts';
import { commonFlags } from '../../runtime/component.ts';
import { checkListenAddresses, durationFlag, formatHelp, listFlag, oneOf, parseFlags, parseHostPort, switchFlag, valueFlag } from '../../runtime/flags.ts';

const specs = {
  admin: valueFlag({ value: 'ADDR:PORT', help: 'admin', parse: parseHostPort, default: parseHostPort('127.0.0.1:9153') }),
  mode: valueFlag({ value: 'MODE', help: 'mode', parse: oneOf(['nftables', 'iptables'] as const) }),
  upstream: listFlag({ value: 'ADDR:PORT', help: 'upstream', parse: parseHostPort }),
  cleanup: switchFlag('cleanup'),
};

describe('parseFlags', () => {
  it('parses values, defaults, repeats and switches', () => {
    const v = parseFlags('netplane x', specs, ['--mode=iptables', '--upstream', '1.1.1.1:53', '--upstream=[2001:db8::1]:53', '--cleanup'])!;
    expect(v.admin).toMatchObject({ host: '127.0.0.1', port: 9153 });
    expect(v.mode).toBe('iptables');
    expect(v.upstream.map((u) => [u.host, u.port])).toEqual([
      ['1.1.1.1', 53],
      ['2001:db8::1', 53],
    ]);
    expect(v.cleanup).toBe(true);
  });

  it('leaves an optional flag undefined and a switch false', () => {
    const v = parseFlags('netplane x', specs, [])!;
    expect([v.mode, v.cleanup, v.upstream]).toEqual([undefined, false, []]);
  });

  it('returns null for --help', () => {
    expect(parseFlags('netplane x', specs, ['--help'])).toBeNull();
  });

  const bad: Array<[string[], string]> = [
    [['--bogus'], 'netplane x: unknown flag --bogus (see netplane x --help)'],
    [['stray'], 'netplane x: unexpected argument stray; every setting is a --flag (see netplane x --help)'],
    [['--mode'], 'netplane x: --mode needs a value MODE (see netplane x --help)'],
    [['--mode', 'ipvs'], 'netplane x: --mode "ipvs": must be one of nftables, iptables'],
    [['--admin', ':99999'], 'netplane x: --admin ":99999": must be ADDR:PORT with an IP address (or localhost), e.g. 127.0.0.1:9153 or [::1]:9153'],
    [['--admin', 'node1.example:80'], 'netplane x: --admin "node1.example:80": must be ADDR:PORT with an IP address (or localhost), e.g. 127.0.0.1:9153 or [::1]:9153'],
    [['--cleanup=yes'], 'netplane x: --cleanup takes no value (see netplane x --help)'],
    // Node names it '-h, --help' in its error.
    [['--help=yes'], 'netplane x: --help takes no value'],
    // A value left out before the next flag needs a value; a value that only starts with "-" is written with "=".
    [['--mode', '--cleanup'], 'netplane x: --mode needs a value MODE (see netplane x --help)'],
    [['--upstream', '--admin=127.0.0.1:1'], 'netplane x: --upstream needs a value ADDR:PORT (see netplane x --help)'],
    [['--mode', '-h'], 'netplane x: --mode needs a value MODE (see netplane x --help)'],
    [['--mode', '--help'], 'netplane x: --mode needs a value MODE (see netplane x --help)'],
    [['--mode', '-1'], 'netplane x: --mode: a value that starts with "-" is written --mode=VALUE (see netplane x --help)'],
    [['--mode', '--iptables'], 'netplane x: --mode: a value that starts with "-" is written --mode=VALUE (see netplane x --help)'],
    // A single-value flag given more than once: refused, the earlier value never silently dropped unchecked.
    [['--mode', 'ipvs', '--mode', 'iptables'], 'netplane x: --mode is given twice; give it once'],
    [['--mode=iptables', '--mode', 'iptables'], 'netplane x: --mode is given twice; give it once'],
    [['--admin', ':1', '--admin', ':2', '--admin=:3'], 'netplane x: --admin is given 3 times; give it once'],
  ];
  for (const [argv, message] of bad) {
    it(`refuses ${argv.join(' ')} with one sentence`, () => {
      let error: unknown;
      try {
        parseFlags('netplane x', specs, argv);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe(message);
      expect((error as Error).message).not.toContain('\n');
    });
  }
});

describe('parseHostPort', () => {
  const cases: Array<[string, string, number]> = [
    ['127.0.0.1:53', '127.0.0.1', 53],
    [':8080', '0.0.0.0', 8080],
    ['[::1]:0', '::1', 0],
    ['localhost:10249', 'localhost', 10249],
  ];
  for (const [raw, host, port] of cases) it(raw, () => expect(parseHostPort(raw)).toMatchObject({ host, port }));
  for (const raw of ['53', '1.2.3.4', '1.2.3.4:65536', '::1:53', '[::1]', 'a b:1', '1.2.3.4.5:80', '[1.2.3.4]:80', 'example.com:53']) it(`refuses ${raw}`, () => expect(() => parseHostPort(raw)).toThrow(/ADDR:PORT/));
});

describe('a flag written with one dash, as Go programs take it', () => {
  it('is named with its two dashes; other single-dash words stay unknown flags', () => {
    expect(() => parseFlags('netplane x', specs, ['-mode', 'iptables'])).toThrow('netplane x: -mode is written --mode, with two dashes (see netplane x --help)');
    expect(() => parseFlags('netplane x', specs, ['-admin=127.0.0.1:1'])).toThrow('netplane x: -admin is written --admin, with two dashes (see netplane x --help)');
    expect(() => parseFlags('netplane x', specs, ['-x'])).toThrow('netplane x: unknown flag -x (see netplane x --help)');
  });
});

describe('durationFlag', () => {
  const specs = { period: durationFlag({ help: 'how often', default: '30s' }) };

  it('parses durations into milliseconds and defaults to the written default', () => {
    expect(parseFlags('netplane x', specs, [])!.period).toBe(30_000);
    expect(parseFlags('netplane x', specs, ['--period', '2m'])!.period).toBe(120_000);
    expect(parseFlags('netplane x', specs, ['--period', '250ms'])!.period).toBe(250);
  });

  it("takes Go's compound durations too, as kube-proxy's flags and configuration files write them", () => {
    const got = (raw: string) => parseFlags('netplane x', specs, [`--period=${raw}`])!.period;
    expect(got('1m30s')).toBe(90_000);
    expect(got('24h0m0s')).toBe(86_400_000);
    expect(got('1m0s')).toBe(60_000);
    expect(got('1.5s')).toBe(1500);
    expect(got('1s500ms')).toBe(1500);
    expect(got('0')).toBe(0);
    expect(got('0s')).toBe(0);
    for (const bad of ['1m 30s', 's', '1d', '-1s', '1h-']) expect(() => got(bad)).toThrow('must be a duration such as 500ms, 1s, 2m or 1h');
  });

  it('shows the default as written, and refuses what is not a duration in one sentence', () => {
    expect(formatHelp('netplane x', 'does x', specs)).toMatch(/--period DURATION +how often \(default 30s\)/);
    expect(() => parseFlags('netplane x', specs, ['--period', '30'])).toThrow('netplane x: --period "30": must be a duration such as 500ms, 1s, 2m or 1h');
  });

  it('keeps a duration within its bounds, and under what Node timers can wait without them', () => {
    const bounded = { every: durationFlag({ help: 'how often', default: '30s', min: '1s', max: '1h' }) };
    expect(parseFlags('netplane x', bounded, ['--every', '1s'])!.every).toBe(1000);
    expect(() => parseFlags('netplane x', bounded, ['--every', '0s'])).toThrow('netplane x: --every "0s": must be from 1s to 1h');
    expect(() => parseFlags('netplane x', bounded, ['--every', '61m'])).toThrow('netplane x: --every "61m": must be from 1s to 1h');
    expect(() => parseFlags('netplane x', specs, ['--period', '600h'])).toThrow('netplane x: --period "600h": must be from 0s to 576h');
  });

  it.each([
    ['N1', 'n1'],
    [' Node-A.Example.COM ', 'node-a.example.com'],
    ['n1', 'n1'],
  ])('--node-name %j is the node %j, for every component (kube-proxy GetHostname)', (raw, want) => {
    expect(parseFlags('netplane proxy', commonFlags('127.0.0.1:0'), ['--node-name', raw])!['node-name']).toBe(want);
  });

  it('refuses a blank --node-name', () => {
    expect(() => parseFlags('netplane proxy', commonFlags('127.0.0.1:0'), ['--node-name', '  '])).toThrow(UsageError);
  });
});

describe('checkListenAddresses', () => {
  // A component's table as dns and ingress declare theirs: --admin (common), repeatable --listen, optional --health,
  // an ingress-style listener that may be `off`, and a destination that is not listened on.
  const listener = (raw: string) => (raw === 'off' ? ('off' as const) : parseHostPort(raw));
  const table = {
    ...commonFlags('127.0.0.1:9153'),
    listen: listFlag({ value: 'ADDR:PORT', help: 'listen', parse: parseHostPort, default: [parseHostPort('0.0.0.0:53')], listens: true }),
    health: valueFlag({ value: 'ADDR:PORT', help: 'health', parse: parseHostPort, listens: true }),
    http: valueFlag({ value: 'ADDR:PORT', help: 'http', parse: listener, default: parseHostPort('0.0.0.0:80') as ReturnType<typeof listener>, listens: true }),
    upstream: listFlag({ value: 'ADDR:PORT', help: 'upstream', parse: parseHostPort }),
  };
  const check = (argv: string[]) => checkListenAddresses('netplane x', table, parseFlags('netplane x', table, argv)!);
  const clashes: Array<[string[], string]> = [
    [['--admin', '127.0.0.1:9000', '--health', '127.0.0.1:9000'], 'netplane x: --admin and --health both listen on 127.0.0.1:9000; give each its own address'],
    [['--admin', '127.0.0.1:5353', '--listen', '127.0.0.1:5353'], 'netplane x: --admin and --listen both listen on 127.0.0.1:5353; give each its own address'],
    [['--listen', '127.0.0.1:53', '--listen', '127.0.0.1:53'], 'netplane x: --listen gives 127.0.0.1:53 twice; give each address once'],
    [['--admin', '[::1]:9000', '--http', '[::1]:9000'], 'netplane x: --admin and --http both listen on [::1]:9000; give each its own address'],
    // The defaults count: --admin on port 80 of 127.0.0.1 meets --http's default 0.0.0.0:80.
    [['--admin', '127.0.0.1:80'], 'netplane x: --http 0.0.0.0:80 listens on port 80 of every IPv4 address, so --admin 127.0.0.1:80 cannot have it too; give each its own port'],
    [['--listen', '[::]:9153'], 'netplane x: --listen [::]:9153 listens on port 9153 of every address, IPv4 included, so --admin 127.0.0.1:9153 cannot have it too; give each its own port'],
  ];
  for (const [argv, message] of clashes) {
    it(`refuses ${argv.join(' ')} with one sentence`, () => {
      let error: unknown;
      try {
        check(argv);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe(message);
    });
  }
  const fine: string[][] = [
    [],
    ['--admin', '127.0.0.1:0', '--health', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--listen', '127.0.0.1:0'],
    ['--admin', '127.0.0.1:9000', '--health', '127.0.0.2:9000'],
    ['--admin', '0.0.0.0:9000', '--health', '[::1]:9000'],
    ['--admin', '127.0.0.1:80', '--http', 'off'],
    // Only declared flags: an upstream on the admin address is a destination.
    ['--admin', '127.0.0.1:9000', '--upstream', '127.0.0.1:9000'],
  ];
  for (const argv of fine) it(`accepts ${argv.join(' ') || 'the defaults'}`, () => expect(() => check(argv)).not.toThrow());
});
