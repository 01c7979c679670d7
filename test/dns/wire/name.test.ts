// Names in presentation form to wire labels, as a table: escapes give labels holding dots, backslashes and any byte.
import { describe, expect, it } from 'vitest';
import { NameError, nameToWire } from '../../../dns/wire/name.ts';

/** Wire labels as an array of latin1 strings. */
function labels(wire: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; wire[at] !== 0; at += wire[at]! + 1) out.push(wire.toString('latin1', at + 1, at + 1 + wire[at]!));
  return out;
}

describe('nameToWire', () => {
  const cases: Array<[string, string[]]> = [
    ['www.example.com', ['www', 'example', 'com']],
    ['www.example.com.', ['www', 'example', 'com']],
    ['', []],
    ['.', []],
    ['a\\.b.example.com', ['a.b', 'example', 'com']],
    ['sp\\032ace.example', ['sp ace', 'example']],
    ['back\\\\slash.example', ['back\\slash', 'example']],
    ['hi\\255\\000.example', ['hi\xff\x00', 'example']],
    ['end\\.', ['end.']],
    ['Mixed.Case', ['Mixed', 'Case']],
  ];
  it.each(cases)('%s', (name, want) => {
    const wire = nameToWire(name);
    expect(labels(wire)).toEqual(want);
    expect(wire.length).toBe(want.reduce((n, l) => n + l.length + 1, 1));
  });

  it.each(['a..b', '.a', 'a\\', 'x\\256', `${'a'.repeat(64)}.com`, `${'abcdefghi.'.repeat(26)}com`])('refuses %s', (name) => {
    expect(() => nameToWire(name)).toThrow(NameError);
  });
});
