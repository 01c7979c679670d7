// Which EDNS options cross the forwarder (RFC 6891 6.1.2: code, length, data each, as on the wire). CoreDNS's forward
// writes the client's message upstream as it came, every option included, and relays the upstream's options back.
// Here an option travels only when its meaning is end to end: those that speak of the hop they travel on stay on it.
// Pure.

/** EDNS Client Subnet (RFC 7871): the client's network, which an upstream may tailor its answer to. */
export const ecsCode = 8;

/**
 * Options that concern one hop, with the reason each is not relayed (in either direction):
 * - 3 NSID (RFC 5001): the client asks for the identity of the server it talks to; relayed, the upstream's would
 *   come back as ours (we have none to give, so the client gets none, as from any server without NSID).
 * - 9 EXPIRE (RFC 7314): asks the server answered for the expiry of its own copy of a zone (zone transfers).
 * - 10 COOKIE (RFC 7873): a client cookie is made for one client–server pair; relayed, it would tell the upstream a
 *   client's identifier and give the client a server cookie that is not ours.
 * - 11 TCP keepalive (RFC 7828): the idle timeout of the connection it is sent on.
 * - 12 PADDING (RFC 7830): pads the encrypted message it is in; nothing beyond it.
 */
export const hopByHopCodes: ReadonlySet<number> = new Set([3, 9, 10, 11, 12]);

/** The codes left out of the cache key: the hop-by-hop ones, and ECS, which the cache matches by network (subnet.ts). */
export const unkeyedCodes: ReadonlySet<number> = new Set([...hopByHopCodes, ecsCode]);

/**
 * `options` without those whose code is in `dropped` (by default the hop-by-hop ones): the same buffer when none is,
 * undefined when nothing is left. The options are assumed well formed (query.ts readOpt checked them); a length
 * running past the end ends the walk.
 */
export function relayed(options: Buffer, dropped: ReadonlySet<number> = hopByHopCodes): Buffer | undefined {
  let kept: Buffer[] | undefined;
  let off = 0;
  while (off + 4 <= options.length) {
    const code = options.readUInt16BE(off);
    const end = Math.min(options.length, off + 4 + options.readUInt16BE(off + 2));
    if (dropped.has(code)) kept ??= [options.subarray(0, off)];
    else kept?.push(options.subarray(off, end));
    off = end;
  }
  if (kept === undefined) return options.length === 0 ? undefined : options;
  const out = Buffer.concat(kept);
  return out.length === 0 ? undefined : out;
}

/** The first option with `code` in `options`, whole (code, length, data); undefined when there is none. */
export function findOption(options: Buffer | undefined, code: number): Buffer | undefined {
  if (options === undefined) return undefined;
  for (let off = 0; off + 4 <= options.length; ) {
    const end = Math.min(options.length, off + 4 + options.readUInt16BE(off + 2));
    if (options.readUInt16BE(off) === code) return options.subarray(off, end);
    off = end;
  }
  return undefined;
}
