// Reading netplane's tables back for a full sync without having nft print every element: `nft -j -t list ruleset`
// gives the tables, chains, rules and sets (their identities, no elements), and the elements of each set the
// desired state keeps with the same declaration are listed by netlink and turned into the text nft would have
// printed (elements.ts). The few sets without a codec (intervals) are listed by nft one at a time; the elements
// of sets that are to be recreated or that the kernel fills (affinity) are not read at all (diff.ts does not
// look at them).
import type { CommandRunner } from '../../../runtime/exec.ts';
import { isMissing, nftItems, tableFromItems } from '../kernel.ts';
import { families, setId, tableFamily, tableName, type Family, type TableState } from '../model.ts';
import { nftRunOptions } from '../nft-env.ts';
import type { Desired } from '../render.ts';
import { elementCodec, ElementTextError, verdictText } from './elements.ts';
import type { ElementChannel } from './socket.ts';

/** Both families' tables as diff() needs them. Rejects with CommandError or NftNetlinkError. */
export async function readTablesByNetlink(runner: CommandRunner, channel: ElementChannel, next: Desired): Promise<Record<Family, TableState>> {
  const { stdout } = await runner.run('nft', ['-j', '-t', 'list', 'ruleset'], undefined, nftRunOptions());
  const items = nftItems(stdout, 'list ruleset');
  const out = {} as Record<Family, TableState>;
  for (const f of families) {
    const state = tableFromItems(f, items);
    out[f] = state;
    for (const [name, held] of state.sets) {
      const want = next[f].sets.get(name);
      if (!want?.elements || held.id !== setId(want)) continue;
      const codec = elementCodec(want.spec);
      let elements: Map<string, string> | undefined;
      try {
        if (codec) elements = await readDecoded(channel, f, name, codec);
      } catch (e) {
        // Bytes the codec does not read as it writes them: nft says what they are.
        if (!(e instanceof ElementTextError)) throw e;
      }
      held.elements = elements ?? (await readByNft(runner, f, held.kind, name));
    }
  }
  return out;
}

async function readDecoded(channel: ElementChannel, f: Family, set: string, codec: NonNullable<ReturnType<typeof elementCodec>>): Promise<Map<string, string>> {
  const elements = new Map<string, string>();
  for (const e of await channel.readElements(f, set)) {
    const value = codec.data === undefined ? '' : codec.data.kind === 'verdict' ? (e.verdict ? verdictText(e.verdict) : '') : e.data ? codec.data.text(e.data) : '';
    elements.set(codec.keyText(e.key), value);
  }
  return elements;
}

async function readByNft(runner: CommandRunner, f: Family, kind: 'set' | 'map', set: string): Promise<Map<string, string>> {
  try {
    const { stdout } = await runner.run('nft', ['-j', 'list', kind, tableFamily[f], tableName, set], undefined, nftRunOptions());
    return tableFromItems(f, nftItems(stdout, `list set ${set}`)).sets.get(set)?.elements ?? new Map();
  } catch (e) {
    if (isMissing(e)) return new Map();
    throw e;
  }
}
