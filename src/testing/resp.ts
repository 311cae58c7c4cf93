/**
 * Just enough of the Redis protocol (RESP2, and RESP3's types) for the fault proxy to find where one
 * request or reply ends, so it can count them on a pipelined stream. Values are never decoded.
 */

const CRLF = Buffer.from('\r\n');

/**
 * The offset just past the value that starts at `start`, or -1 while `buffer` holds only part of it.
 * A request that does not start with '*' is an inline command: one line.
 */
export function respValueEnd(buffer: Buffer, start: number): number {
  if (start >= buffer.length) return -1;
  const type = String.fromCharCode(buffer[start]);
  if (!'+-:_,#($!=*~>%|'.includes(type)) {
    const newline = buffer.indexOf(0x0a, start);
    return newline < 0 ? -1 : newline + 1;
  }
  const lineEnd = buffer.indexOf(CRLF, start);
  if (lineEnd < 0) return -1;
  const after = lineEnd + 2;
  const length = Number(buffer.toString('latin1', start + 1, lineEnd));
  switch (type) {
    case '$': // bulk string
    case '!': // bulk error
    case '=': {
      // verbatim string
      if (length < 0) return after;
      const end = after + length + 2;
      return end <= buffer.length ? end : -1;
    }
    case '*': // array
    case '~': // set
    case '>': // push
    case '%': // map: key and value per entry
    case '|': {
      // attribute
      if (length < 0) return after;
      const elements = type === '%' || type === '|' ? length * 2 : length;
      let offset = after;
      for (let i = 0; i < elements; i++) {
        offset = respValueEnd(buffer, offset);
        if (offset < 0) return -1;
      }
      return offset;
    }
    default: // simple string, error, integer, null, double, boolean, big number: one line
      return after;
  }
}

/** The command name of a complete request (an array of bulk strings, or an inline command), lower case. */
export function commandName(request: Buffer): string {
  if (request[0] !== 0x2a /* '*' */) {
    return request.toString('latin1').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  }
  const headerEnd = request.indexOf(CRLF);
  const bulkHeaderEnd = request.indexOf(CRLF, headerEnd + 2);
  if (headerEnd < 0 || bulkHeaderEnd < 0 || request[headerEnd + 2] !== 0x24 /* '$' */) return '';
  const length = Number(request.toString('latin1', headerEnd + 3, bulkHeaderEnd));
  return request.toString('latin1', bulkHeaderEnd + 2, bulkHeaderEnd + 2 + length).toLowerCase();
}

/** Cuts complete values off the front of a stream that arrives in arbitrary chunks. */
export class RespSplitter {
  private pending: Buffer = Buffer.alloc(0);

  /** Adds a chunk; returns the values it completed, in order. */
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const values: Buffer[] = [];
    let start = 0;
    for (;;) {
      const end = respValueEnd(this.pending, start);
      if (end < 0) break;
      values.push(this.pending.subarray(start, end));
      start = end;
    }
    this.pending = this.pending.subarray(start);
    return values;
  }
}
