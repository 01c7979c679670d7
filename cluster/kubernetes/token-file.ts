// Bearer tokens read from a file, and read again while the process runs, as client-go does for a kubeconfig user's
// tokenFile and for the in-cluster service account: a bound service-account token expires, and the kubelet writes
// its successor to the same file. The client library reads a `token-file` once, at load, and knows no `tokenFile`.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { KubeConfig, User } from '@kubernetes/client-node';
import type { Logger } from '../../runtime/logger.ts';

/** client-go re-reads a token file once a minute (transport.NewCachedFileTokenSource). */
export const defaultTokenRefreshMs = 60_000;

/** The auth-provider name that marks a user whose token TokenFileAuth reads; no authenticator of the library claims it. */
const providerName = 'netplane-token-file';

/** A token file and what was last read from it. */
interface TokenFile {
  path: string;
  token: string;
  /** performance.now() of the last read, good or failed. */
  readAt: number;
  /** The last read failed; logged once until a read succeeds again. */
  failing: boolean;
  reading?: Promise<void>;
}

/** The library's authenticator interface (not exported by name). */
type Authenticator = Parameters<KubeConfig['addAuthenticator']>[0];

/**
 * Sends, for each user made by `user()`, the token last read from its file, reading the file again once it is
 * `refreshMs` old. A read that fails (no file, an empty file) keeps the token read before and is logged once.
 * Never throws while a request is prepared: the library prepares a watch request outside its error handling.
 */
export class TokenFileAuth implements Authenticator {
  #refreshMs: number;
  #files = new Map<string, TokenFile>();
  #log?: Logger;

  constructor(refreshMs = defaultTokenRefreshMs) {
    this.#refreshMs = refreshMs;
  }

  /** Where read failures after the first read are logged (the kubeconfig is loaded before a logger exists). */
  logTo(log: Logger): void {
    this.#log = log;
  }

  /**
   * The user rewritten to send the token of `path`, read now. A static `token` of the user only stands in when the
   * file cannot be read (client-go prefers the file). Throws an Error naming the file when it cannot be read and there
   * is no static token.
   */
  user(user: User, path: string): User {
    let token: string;
    try {
      token = readToken(readFileSync(path, 'utf8'));
    } catch (e) {
      if (!user.token) throw new Error(`cannot read the token file ${path}: ${(e as Error).message}`, { cause: e });
      token = user.token;
    }
    this.#files.set(path, { path, token, readAt: performance.now(), failing: false });
    return { ...user, token: undefined, authProvider: { name: providerName, config: { path } } };
  }

  isAuthProvider(user: User): boolean {
    return (user.authProvider as { name?: unknown } | undefined)?.name === providerName;
  }

  async applyAuthentication(user: User, opts: { headers?: Record<string, unknown> }): Promise<void> {
    const file = this.#files.get((user.authProvider as { config: { path: string } }).config.path);
    if (!file) return;
    if (performance.now() - file.readAt >= this.#refreshMs) {
      // Requests that start together wait for one read.
      file.reading ??= this.#reread(file).finally(() => (file.reading = undefined));
      await file.reading;
    }
    opts.headers ??= {};
    opts.headers.Authorization = `Bearer ${file.token}`;
  }

  async #reread(file: TokenFile): Promise<void> {
    try {
      const token = readToken(await readFile(file.path, 'utf8'));
      if (token !== file.token) this.#log?.debug({ tokenFile: file.path }, 'the token file holds a new token; sending it from now on');
      if (file.failing) this.#log?.info({ tokenFile: file.path }, 'the token file can be read again');
      file.token = token;
      file.failing = false;
    } catch (e) {
      if (!file.failing) {
        const err = (e as Error).message;
        this.#log?.warn({ tokenFile: file.path, err }, `cannot read the token file ${file.path} again (${err}); still sending the token read before, and retrying`);
      }
      file.failing = true;
    } finally {
      file.readAt = performance.now();
    }
  }
}

/** The token in a file's text: without surrounding white space (`kubectl create token > file` adds a newline). */
function readToken(text: string): string {
  const token = text.trim();
  if (token === '') throw new Error('the file is empty');
  return token;
}
