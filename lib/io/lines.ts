/**
 * Streamed lines of a text file (plain or gzip), with 1-based line numbers and whether the last line ended
 * with a newline. Memory holds one read buffer plus the current partial line, whatever the file size.
 */
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';

export interface Line {
  text: string;
  /** 1-based line number. */
  line: number;
  /** True for a final line with no newline after it (a truncated write leaves one). */
  unterminated: boolean;
}

/** True when the file name says gzip. */
export function isGzip(path: string): boolean {
  return /\.gz$/i.test(path);
}

/** Non-empty lines of `path` in order ('\n' or '\r\n' endings). */
export async function* readLines(path: string, highWaterMark = 1 << 20): AsyncGenerator<Line> {
  const raw = createReadStream(path, { highWaterMark });
  const stream = isGzip(path) ? raw.pipe(createGunzip()) : raw;
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let line = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const text = rest + decoder.write(chunk);
      let start = 0;
      for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) break;
        line++;
        let end = nl;
        if (end > start && text.charCodeAt(end - 1) === 13) end--;
        if (end > start) yield { text: text.slice(start, end), line, unterminated: false };
        start = nl + 1;
      }
      rest = text.slice(start);
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'Z_BUF_ERROR' || err.code === 'Z_DATA_ERROR') throw new Error(`${path}: gzip data is corrupt or truncated after line ${line} (${err.message})`);
    if (err.code === 'ENOENT') throw new Error(`${path}: no such file`);
    throw e;
  } finally {
    raw.destroy();
  }
  rest += decoder.end();
  if (rest.length > 0) {
    line++;
    const text = rest.endsWith('\r') ? rest.slice(0, -1) : rest;
    if (text.trim().length > 0) yield { text, line, unterminated: true };
  }
}
