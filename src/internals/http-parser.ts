// Node's native HTTP/1 parser (llhttp), the one its own http server and client use, reached
// through `_http_common` (not in the public types, deprecated in the docs since Node 24 but
// there through 26). This file is the only place that knows its shape.
import { createRequire } from 'node:module';

export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  /** Bytes consumed, or an Error with `code` (HPE_*) and `bytesParsed`. */
  execute(data: Buffer): number | ParseError;
  /** End of input: completes a close-delimited message, or an Error if one is cut. */
  finish(): undefined | ParseError;
  close(): void;
  [k: number]: unknown;
}

export interface ParseError extends Error {
  code: string;
  bytesParsed: number;
}

interface ParserModule {
  HTTPParser: {
    new (): NativeParser;
    REQUEST: number;
    RESPONSE: number;
    kOnMessageBegin: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kLenientNone: number;
  };
  methods: string[];
}

let mod: ParserModule | null | undefined;

/** The binding, or null when this Node has none of the expected shape. */
export function loadHttpParser(): ParserModule | null {
  if (mod !== undefined) return mod;
  try {
    const m = createRequire(import.meta.url)('_http_common') as Partial<ParserModule>;
    const P = m.HTTPParser;
    const ok = typeof P === 'function' && Array.isArray(m.methods) &&
      [P.REQUEST, P.RESPONSE, P.kOnMessageBegin, P.kOnHeaders, P.kOnHeadersComplete, P.kOnBody, P.kOnMessageComplete, P.kLenientNone].every((n) => typeof n === 'number');
    mod = ok ? (m as ParserModule) : null;
  } catch {
    mod = null;
  }
  return mod;
}

const binding = (): ParserModule => {
  const m = loadHttpParser();
  if (m === null) throw new Error("Node's HTTP parser binding is missing (check has('http-parser') first)");
  return m;
};

/** llhttp's method table: the name for the index its callbacks pass. */
export function methods(): readonly string[] {
  return binding().methods;
}

/** What a parser calls back with; the arguments are llhttp's, as Node's binding passes them. */
export interface ParserCallbacks {
  onMessageBegin?: () => void;
  onHeaders: (headers: string[], url: string) => void;
  onHeadersComplete: (...args: never[]) => number;
  onBody: (chunk: Buffer) => void;
  onMessageComplete: () => void;
}

/** A strict parser (no lenient flags); maxHeaderSize 0 = Node's default (16 KiB). */
export function newParser(type: 'request' | 'response', cb: ParserCallbacks): NativeParser {
  return rebindParser(new (binding().HTTPParser)(), type, cb);
}

/** `p` (a parser no longer in use) starts afresh, calling back `cb`: what a pool of parsers reuses. */
export function rebindParser(p: NativeParser, type: 'request' | 'response', cb: ParserCallbacks): NativeParser {
  const { HTTPParser } = binding();
  p.initialize(type === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, 0, HTTPParser.kLenientNone);
  if (cb.onMessageBegin) p[HTTPParser.kOnMessageBegin] = cb.onMessageBegin;
  p[HTTPParser.kOnHeaders] = cb.onHeaders;
  p[HTTPParser.kOnHeadersComplete] = cb.onHeadersComplete;
  p[HTTPParser.kOnBody] = cb.onBody;
  p[HTTPParser.kOnMessageComplete] = cb.onMessageComplete;
  if (!cb.onMessageBegin) p[HTTPParser.kOnMessageBegin] = undefined;
  return p;
}

/**
 * `p` starts afresh, callbacks kept. After a stop past a head ("skip body, upgrade") llhttp
 * takes the next message as it is, but Node's binding reads its upgrade flag, which stays set
 * until the next head is complete, as "the rest is another protocol" and reports no error
 * until then: a parser afresh does. (Callbacks are only ever set along with an initialize, in
 * rebindParser: Node 26 may go on calling one it has called before after it is replaced.)
 */
export function resetParser(p: NativeParser, type: 'request' | 'response'): void {
  const { HTTPParser } = binding();
  p.initialize(type === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, 0, HTTPParser.kLenientNone);
}

/** Frees the native parser once the current stack (maybe inside one of its callbacks) is done. */
export function closeParser(p: NativeParser): void {
  setImmediate(closeNow, p);
}

function closeNow(p: NativeParser): void {
  p.close();
}

/** What Node's http server answers to a client whose input does not parse. */
export function statusForParseError(code: string | undefined): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 413;
  return 400;
}
