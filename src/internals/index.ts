// Node internals hotproxy uses — every underscore API, process.binding, _http_common, raw
// handle trick and handle sent over IPC — live in this folder and nowhere else. Each piece is
// probed once per process. Where one is missing (another Node), or HOTPROXY_INTERNALS_OFF
// names it (`http-parser,stream-wrap,handover` or `all`: how tests force each fallback), its
// user takes a path on public APIs instead:
//
//   http-parser  _http_common's llhttp binding      raw engine   → the node engine
//   stream-wrap  process.binding('stream_wrap')     tcp splice   → socket.pipe()
//   handover     handle readStop/readStart, TCP     moving open  → no hand-over: connections
//                handles over IPC, net.Socket({handle}),  connections  are closed gracefully
//                http.server's connections list     on upgrade     (Connection: close; idle ones left to
//                                                                     their client until the drain deadline)
//
// The master's own (binding a listener without listening, an fd to pass to a child) have no
// public counterpart: without them hotproxy refuses to start with one line saying so.
import { loadHttpParser } from './http-parser.js';
import { handoverUsable, masterHandlesUsable } from './handles.js';
import { loadStreamWrap } from './splice.js';

export type Internal = 'http-parser' | 'stream-wrap' | 'handover';
export const INTERNALS: readonly Internal[] = ['http-parser', 'stream-wrap', 'handover'];

const FALLBACK: Record<Internal, string> = {
  'http-parser': 'node engine (Node http server and client)',
  'stream-wrap': 'socket.pipe() for tcp tunnels',
  handover: 'no connection hand-over: connections close gracefully on upgrade',
};

/** Logged once per worker for each internal it goes without (tests look for it). */
export { NODE_INTERNAL_MISSING } from '../messages.js';

/** The variable that makes the probe report internals missing. */
export const OFF_VARIABLE = 'HOTPROXY_INTERNALS_OFF';

function off(name: Internal): boolean {
  const v = process.env[OFF_VARIABLE];
  if (!v) return false;
  const names = v.split(',').map((s) => s.trim());
  return names.includes('all') || names.includes(name);
}

let probed: Record<Internal, boolean> | undefined;

/** Which internals this process can use (probed once). */
export function internals(): Readonly<Record<Internal, boolean>> {
  probed ??= {
    'http-parser': !off('http-parser') && loadHttpParser() !== null,
    'stream-wrap': !off('stream-wrap') && loadStreamWrap() !== null,
    handover: !off('handover') && handoverUsable(),
  };
  return probed;
}

export function has(name: Internal): boolean {
  return internals()[name];
}

/** The missing ones and what replaces each, for the worker's one log line. */
export function fallbacks(): { internal: Internal; fallback: string }[] {
  return INTERNALS.filter((n) => !has(n)).map((internal) => ({ internal, fallback: FALLBACK[internal] }));
}

/** Why the master cannot run on this Node, or undefined when it can. */
export function masterUnsupported(): string | undefined {
  const missing = masterHandlesUsable();
  return missing === undefined ? undefined : `this Node (${process.version}) lacks ${missing}, which hotproxy needs to hand sockets to its processes`;
}

export { closeParser, methods, newParser, rebindParser, resetParser, statusForParseError, type NativeParser, type ParseError } from './http-parser.js';
export { canSplice, splice } from './splice.js';
export { PENDING, UNABLE, WROTE, bareReading, canShed, canTap, closeBare, readConnection, shed, tap, wear, writeNow, type BareOwner, type ReadTap, type Tap } from './handle-io.js';
export { parseFromStream } from './tls-parse.js';
export { releaseMemory } from './memory.js';
export { holdOpenAfterPeerGoaway } from './h2-session.js';
export {
  answerHalfClosed, bindServerHandle, closeHandle, freezeReads, httpParserOf, idleHttpParsers, inheritedServerHandle, isBusyHttpSocket, listeningFd, sendHandle,
  socketFromHandle, type BoundHandle, type Frozen,
} from './handles.js';
