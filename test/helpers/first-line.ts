// The first line a TCP server on loopback sends: what the userspace proxy's tests read from their backends through it.
import { connect } from 'node:net';

/** The first line a TCP server at 127.0.0.1:`port` sends; rejects when it cannot be reached or sends none within 2 s. */
export function firstLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) (s.destroy(), resolve(buf.trim()));
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error('closed')));
    s.setTimeout(2000, () => (s.destroy(), reject(new Error('timeout'))));
  });
}
