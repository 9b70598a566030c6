/**
 * @module
 * The token file in force (`--auth-token-file`), which a reload (SIGHUP) reads again: admission
 * reads {@link TokenFile.table} on every request, so a token added works from the next request
 * and a token removed stops working, while requests already admitted finish.
 */
import { loadTokenFile, type TokenTable } from './auth.ts';

/** See the module comment. */
export class TokenFile {
  #path: string;
  #table: TokenTable;

  private constructor(path: string, table: TokenTable) {
    this.#path = path;
    this.#table = table;
  }

  /** Reads `path`; a missing or malformed file is a configuration error. */
  static load(path: string): TokenFile {
    return new TokenFile(path, loadTokenFile(path));
  }

  get path(): string {
    return this.#path;
  }

  get table(): TokenTable {
    return this.#table;
  }

  /** Reads `path` (default: the same file); throws and keeps the tokens in force when it is bad. */
  read(path = this.#path): TokenTable {
    return loadTokenFile(path);
  }

  /** Puts a table read by {@link read} in force. */
  replace(path: string, table: TokenTable): void {
    this.#path = path;
    this.#table = table;
  }
}
