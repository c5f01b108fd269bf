// The conformance clients over TLS: HTTP/1.1 (the plain client of wire.ts on a TLS socket, ALPN
// http/1.1) and HTTP/2 (node:http2, ALPN h2), each asserting what it negotiated. The h2 client
// gives the same Answer as wire.ts does, so the differential compares it with the direct
// HTTP/1.1 answer; like that client it never retries. A session that received GOAWAY takes no
// new requests (the caller opens another: connection management), and its streams in flight
// must still complete; a stream refused or reset is an error in its answer.
import { createHash } from 'node:crypto';
import http2, { type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import type net from 'node:net';
import tls from 'node:tls';
import { drained, HOST, uploadBytes, type Answer, type Field, type Request } from './wire.js';

/** A TLS socket to 127.0.0.1:port that must have chosen HTTP/1.1 by ALPN (wire.ts's Conn reads it). */
export function tlsH1(port: number): net.Socket {
  const s = tls.connect({ host: '127.0.0.1', port, servername: HOST, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
  s.once('secureConnect', () => {
    if (s.alpnProtocol !== 'http/1.1') s.destroy(new Error(`ALPN chose ${String(s.alpnProtocol)}, not http/1.1`));
  });
  return s;
}

/** Fields HTTP/2 forbids (RFC 9113 §8.2.2): what a connection-specific field is. */
export const CONNECTION_SPECIFIC = /^(connection|keep-alive|proxy-connection|transfer-encoding|upgrade)$/;

/**
 * The request as HTTP/2 can say it, which is also what goes to the backend directly (as
 * HTTP/1.1): no HTTP/1.0, no connection-specific fields (TE only as "trailers"), a target in
 * origin form (the authority is :authority, i.e. Host).
 */
export function asH2(r: Request): Request {
  const headers = (r.headers ?? []).filter(([k, v]) => !CONNECTION_SPECIFIC.test(k) && (k !== 'te' || v === 'trailers'));
  let target = r.target;
  const abs = /^https?:\/\/[^/?]*(.*)$/.exec(target);
  if (abs) target = abs[1]!.startsWith('/') ? abs[1]! : `/${abs[1]!}`;
  return { ...r, target, headers, version: '1.1' };
}

const EMPTY = (): Answer => ({ status: 0, reason: '', headers: [], info: [], trailers: [], bodyLength: 0, bodyHash: '', wireHash: '', firstBodyMs: -1, closes: false });

const pairsOf = (raw: string[]): Field[] => {
  const out: Field[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!raw[i]!.startsWith(':')) out.push([raw[i]!, raw[i + 1]!]);
  return out;
};

interface Session {
  session: ClientHttp2Session;
  ready: Promise<void>;
  goneAway: boolean;
  /** The smallest last stream id a GOAWAY gave: streams above it were not processed. */
  lastStreamId?: number;
  failure?: string;
  port0: number;
  /** The server ended the TLS connection (its FIN arrived). */
  peerEnded?: boolean;
}

/** One HTTP/2 session to 127.0.0.1:port that must have chosen h2 by ALPN. */
function openSession(port: number): Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, { servername: HOST, rejectUnauthorized: false, maxSessionMemory: 64 });
  const s: Session = { session, goneAway: false, port0: 0, ready: Promise.resolve() };
  s.ready = new Promise((resolve, reject) => {
    session.once('connect', (_s: ClientHttp2Session, socket: tls.TLSSocket) => {
      s.port0 = socket.localPort ?? 0;
      socket.once('end', () => (s.peerEnded = true));
      if (socket.alpnProtocol === 'h2') resolve();
      else reject(new Error(`ALPN chose ${String(socket.alpnProtocol)}, not h2`));
    });
    session.once('error', reject);
  });
  s.ready.catch(() => {});
  session.on('error', (err) => (s.failure ??= `session: ${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`));
  session.on('goaway', (_code: number, last: number) => {
    s.goneAway = true;
    s.lastStreamId = Math.min(s.lastStreamId ?? last, last);
  });
  return s;
}

/**
 * Requests a GOAWAY declared unprocessed (REFUSED_STREAM, stream id above its last stream id:
 * RFC 9113 §8.7.1, nothing of them reached the backend) and that were therefore sent again on
 * a new session, as every h2 client does. Counted apart, never as answered.
 */
export const unprocessed = { count: 0 };

/**
 * An HTTP/2 client: requests are concurrent streams of its session. Once the server said
 * GOAWAY, new requests go on a new session (connection management, as any h2 client does,
 * not a retry: nothing sent is sent again); the old session's streams run to their end.
 */
export class H2Conn {
  private s: Session;
  private old: Session[] = [];
  readonly ready: Promise<void>;
  private shut = false;

  constructor(private port: number, private timeoutMs = 20_000) {
    this.s = openSession(port);
    this.ready = this.s.ready;
  }

  get port0(): number {
    return this.s.port0;
  }

  /** Closed by its user, or its session failed (a GOAWAY alone does not close it). */
  get closed(): boolean {
    return this.shut || (!this.s.goneAway && (this.s.session.destroyed || this.s.failure !== undefined));
  }

  /** Sends `r` (as asH2 has it) on a new stream and resolves with its answer. */
  send(r: Request): Promise<Answer> {
    const h: OutgoingHttpHeaders = { ':method': r.method, ':path': r.target, ':scheme': 'https', ':authority': HOST };
    for (const [k, v] of r.headers ?? []) { const was = h[k]; h[k] = was === undefined ? v : [...[was].flat().map(String), v]; }
    const b = r.body;
    if (b && !b.chunk) h['content-length'] = String(b.size);
    if (b?.trailers?.length) h.trailer = b.trailers.map(([k]) => k).join(', ');
    if (r.expect100) h.expect = '100-continue';
    const trailers = b?.trailers?.length ? b.trailers : undefined;
    if (this.s.goneAway || this.s.session.closed) { this.old.push(this.s); this.s = openSession(this.port); }
    const sess = this.s;
    return sess.ready.then(() => this.stream(sess, r, h, trailers), (err: Error) => ({ ...EMPTY(), error: `new session: ${err.message}` }));
  }

  private stream(sess: Session, r: Request, h: OutgoingHttpHeaders, trailers: Field[] | undefined): Promise<Answer> {
    const a = EMPTY();
    const b = r.body;
    return new Promise<Answer>((resolve) => {
      let done = false;
      const finish = (error?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error !== undefined) a.error = `${error} [port ${sess.port0} at ${Date.now()}]`;
        resolve(a);
      };
      const timer = setTimeout(() => { finish(`no complete answer within ${this.timeoutMs} ms (${a.bodyLength} body bytes)`); stream.close(http2.constants.NGHTTP2_CANCEL); }, this.timeoutMs);
      if (sess.session.closed || sess.session.destroyed) { finish(`session closed before the request${sess.failure ? ` (${sess.failure})` : ''}`); return; }
      const stream = sess.session.request(h, { endStream: !b || (!b.chunk && b.size === 0 && !trailers), waitForTrailers: trailers !== undefined });
      if (trailers) stream.once('wantTrailers', () => stream.sendTrailers(Object.fromEntries(trailers)));
      const body = createHash('sha256');
      let sentAt = Date.now();
      let final = false;
      stream.on('headers', (hs: Record<string, unknown>, _f: number, raw: string[]) => a.info.push({ status: Number(hs[':status']), headers: pairsOf(raw) }));
      stream.on('response', (hs: Record<string, unknown>, _f: number, raw: string[]) => {
        final = true;
        a.status = Number(hs[':status']);
        a.headers = pairsOf(raw);
      });
      stream.on('data', (d: Buffer) => {
        if (a.firstBodyMs < 0) a.firstBodyMs = Date.now() - sentAt;
        a.bodyLength += d.length;
        body.update(d);
        if (r.slowReadMs) { stream.pause(); setTimeout(() => stream.resume(), r.slowReadMs); }
      });
      stream.on('trailers', (_hs: unknown, _f: number, raw: string[]) => (a.trailers = pairsOf(raw)));
      stream.on('end', () => {
        if (!final) { finish('stream ended without an answer'); return; }
        a.bodyHash = body.digest('hex').slice(0, 32);
        finish();
        // An answer before the body was asked for: the rest is not wanted.
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      });
      stream.on('error', (err) => {
        // Judged once the GOAWAY that refused it has been seen (its event may come after).
        setImmediate(() => {
          const last = sess.lastStreamId;
          if (!done && !final && stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM && last !== undefined && (stream.id ?? 0) > last) {
            done = true;
            clearTimeout(timer);
            unprocessed.count++;
            resolve(this.send(r));
            return;
          }
          finish(`stream: ${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`);
        });
      });
      stream.on('close', () => setImmediate(() => setImmediate(() => {
        if (done) return;
        const code = stream.rstCode;
        const how = `${a.bodyLength} body bytes read, session ${sess.session.destroyed ? 'destroyed' : sess.session.closed ? 'closing' : 'open'}${sess.goneAway ? ', GOAWAY seen' : ''}${sess.peerEnded ? ', the server closed the connection' : ''}`;
        finish(code === http2.constants.NGHTTP2_REFUSED_STREAM ? 'stream refused' : `stream closed (code ${code}) before the answer was complete (${how})${sess.failure ? ` (${sess.failure})` : ''}`);
      })));
      if (!b || (!b.chunk && b.size === 0 && !trailers)) return;
      const upload = async (): Promise<void> => {
        if (r.expect100) {
          const go = await new Promise<boolean>((res) => { stream.once('continue', () => res(true)); stream.once('response', () => res(false)); stream.once('close', () => res(false)); });
          if (!go) return;
        }
        for (const c of uploadBytes(b.size, b.seed, b.chunk ?? 64 * 1024)) {
          if (done || stream.destroyed) return;
          if (r.slowWrite) {
            for (let i = 0; i < c.length; i += r.slowWrite.piece) {
              stream.write(c.subarray(i, i + r.slowWrite.piece));
              await new Promise((res) => setTimeout(res, r.slowWrite!.gapMs));
            }
          } else if (!stream.write(c)) await drained(stream);
        }
        stream.end();
        sentAt = Date.now();
      };
      upload().catch((err: Error) => finish(`upload: ${err.message}`));
    });
  }

  close(): void {
    this.shut = true;
    for (const s of [...this.old, this.s]) s.session.destroy();
    this.old = [];
  }
}
