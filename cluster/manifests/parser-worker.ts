// The manifest parser thread (see parser.ts): parses each file it is sent and answers with the outcome.
import { parentPort } from 'node:worker_threads';
import { parseManifestText } from './parse.ts';
import { decode, type ParseReply, type ParseRequest } from './parser.ts';

const port = parentPort!;
port.on('message', (req: ParseRequest) => {
  const parsed = parseManifestText(req.file, decode(req.bytes), new Set(req.kinds));
  try {
    port.postMessage({ id: req.id, parsed } satisfies ParseReply);
  } catch (e) {
    // Parsed objects are plain data; a value that cannot be cloned must still not leave the file unanswered.
    port.postMessage({ id: req.id, error: (e as Error).message } satisfies ParseReply);
  }
});
