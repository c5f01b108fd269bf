// No-retry clients for the TLS edge, in the shape of load.js: each lane sends one request at a
// time and every request is counted, as answered (200 with the body it should have) or failed
// with its reason; nothing is ever sent twice.
//
// - TlsLoad: HTTPS keep-alive over HTTP/1.1 (ALPN http/1.1). An answer with Connection: close
//   retires its connection; the next request opens a new one (that is connection management,
//   not a retry).
// - H2Load: HTTP/2 (ALPN h2), a few streams at a time per session. A session that received
//   GOAWAY takes no new streams; new requests go on a new session, while the streams already
//   sent on the old one must still be answered. One exception, the protocol's own (RFC 9113
//   §6.8, §8.7.1): a stream the server's GOAWAY declares unprocessed (its id is above the GOAWAY's
//   last stream id, it was refused and got no response head), or one Node never sent (HEADERS
//   not sent), is sent on a new session. It is counted apart (`unprocessed`), never as answered
//   or failed; every other refusal, reset or error fails its request.
//
// Requests cycle through a mix of kinds: a GET with no body, POSTs of a few KB and of 64 KiB
// echoed back, and a GET of a 1 MiB answer; each answer is checked against what was sent.
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { countFailure } from './load.js';

export { firstAnswer } from './load.js';

const MiB = 1 << 20;

/** What a lane sends, in turn. `check` says what is wrong with an answer's body, if anything. */
export const KINDS = [
  { name: 'get', method: 'GET', path: '/', body: null },
  { name: 'post-4k', method: 'POST', path: '/echo', body: 4 * 1024 },
  { name: 'get-1m', method: 'GET', path: `/bytes?n=${MiB}`, body: null, size: MiB },
  { name: 'post-64k', method: 'POST', path: '/echo', body: 64 * 1024 },
  { name: 'post-0', method: 'POST', path: '/echo', body: 0 },
];

/** A request of `kind`: its method, path, body (hex text, so that the echo is easy to compare). */
function requestOf(kind) {
  const body = kind.body === null ? null : randomBytes(kind.body / 2).toString('hex');
  return { ...kind, payload: body };
}

/** What is wrong with `body` as the answer to `r`, or undefined. */
function wrongBody(r, body) {
  if (r.size !== undefined) return body.length === r.size ? undefined : `body of ${body.length} bytes, not ${r.size}`;
  let parsed;
  try { parsed = JSON.parse(body.toString()); } catch { return `a body that is not the fixture's JSON (${body.length} bytes)`; }
  if (r.payload !== null && parsed.body !== r.payload) return `echo of ${String(parsed.body).length} bytes does not match the ${r.payload.length} sent`;
  return undefined;
}

class Counts {
  constructor() {
    this.result = { ok: 0, failed: 0, failedOnReused: 0, errors: [], errorCounts: new Map(), byPid: new Map(), byGen: new Map(), byKind: new Map(), maxMs: 0 };
    /** pid -> performance.now() of its first answer. */
    this.firstSeen = new Map();
  }

  record(kind, body) {
    const r = this.result;
    r.ok++;
    r.byKind.set(kind, (r.byKind.get(kind) ?? 0) + 1);
    try {
      const { pid, gen } = JSON.parse(body.toString());
      if (typeof pid !== 'number') return;
      if (!r.byPid.has(pid)) this.firstSeen.set(pid, performance.now());
      r.byPid.set(pid, (r.byPid.get(pid) ?? 0) + 1);
      r.byGen.set(gen, (r.byGen.get(gen) ?? 0) + 1);
    } catch { /* a /bytes answer */ }
  }

  fail(reason, reused) {
    countFailure(this.result, reason, reused);
  }

  servedBy(pid) {
    return this.result.byPid.get(pid) ?? 0;
  }
}

/** One outcome per request, whichever event comes first; resolves the lane's promise. */
function settler(counts, t0, resolve, timer) {
  let settled = false;
  return (outcome) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer.t);
    outcome();
    counts.result.maxMs = Math.max(counts.result.maxMs, performance.now() - t0);
    resolve();
  };
}

export class TlsLoad extends Counts {
  #running = true;
  #lanes;
  #agent;
  #url;
  #timeoutMs;
  #seq = 0;
  #sockets = new WeakSet();

  /** `ca`: PEM roots the server's certificate must chain to; `timeoutMs`: a request slower than this failed. */
  constructor(url, connections = 10, { ca, timeoutMs = 0, kinds = KINDS } = {}) {
    super();
    this.#url = new URL(url);
    this.#timeoutMs = timeoutMs;
    this.kinds = kinds;
    /**
     * Connections opened, answers that said Connection: close, and the ALPN protocol of each
     * connection. `lastClosed`: lanes whose last answer said close (stopped before they opened
     * another connection), so `connections >= lanes + closes - lastClosed`.
     */
    this.connections = 0;
    this.closes = 0;
    this.lastClosed = 0;
    this.alpn = new Map();
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: connections, ca, ALPNProtocols: ['http/1.1'] });
    this.#lanes = Array.from({ length: connections }, () => this.#lane());
  }

  async #lane() {
    let closed = false;
    while (this.#running) closed = await this.#once(requestOf(this.kinds[this.#seq++ % this.kinds.length]));
    if (closed) this.lastClosed++;
  }

  /** Sends `r` once; resolves when it is settled, with whether its answer said Connection: close. */

  #once(r) {
    const t0 = performance.now();
    let closed = false;
    return new Promise((resolve) => {
      const timer = { t: undefined };
      const settle = settler(this, t0, () => resolve(closed), timer);
      const headers = r.payload === null ? {} : { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(r.payload) };
      const req = https.request({ host: this.#url.hostname, port: this.#url.port, method: r.method, path: r.path, headers, agent: this.#agent }, (res) => {
        const parts = [];
        if (/\bclose\b/i.test(res.headers.connection ?? '')) { this.closes++; closed = true; }
        res.on('data', (c) => parts.push(c));
        res.on('end', () => settle(() => {
          const body = Buffer.concat(parts);
          const wrong = res.statusCode === 200 ? wrongBody(r, body) : `status ${res.statusCode}`;
          if (wrong !== undefined) this.fail(`${r.name}: ${wrong}`, req.reusedSocket);
          else this.record(r.name, body);
        }));
        res.on('error', (err) => settle(() => this.fail(`${r.name}: ${err.message}`, req.reusedSocket)));
        res.on('close', () => settle(() => this.fail(`${r.name}: response closed before its end`, req.reusedSocket)));
      });
      req.on('socket', (s) => {
        if (this.#sockets.has(s)) return;
        this.#sockets.add(s);
        this.connections++;
        s.once('secureConnect', () => {
          const p = String(s.alpnProtocol);
          this.alpn.set(p, (this.alpn.get(p) ?? 0) + 1);
        });
      });
      req.on('error', (err) => settle(() => this.fail(`${r.name}: ${`${err.code ?? ''} ${err.message}`.trim()}`, req.reusedSocket)));
      if (this.#timeoutMs > 0) timer.t = setTimeout(() => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      req.end(r.payload ?? undefined);
    });
  }

  async stop() {
    this.#running = false;
    await Promise.all(this.#lanes);
    this.#agent.destroy();
    return this.result;
  }
}

export class H2Load extends Counts {
  #running = true;
  #lanes = [];
  #clients = [];
  #url;
  #ca;
  #timeoutMs;
  #seq = 0;

  /**
   * `clients` HTTP/2 clients, each with `streams` requests in flight at a time on its current
   * session. `ca`: PEM roots the server's certificate must chain to.
   */
  constructor(url, clients = 4, streams = 4, { ca, timeoutMs = 0, kinds = KINDS } = {}) {
    super();
    this.#url = url;
    this.#ca = ca;
    this.#timeoutMs = timeoutMs;
    this.kinds = kinds;
    /** Sessions opened, and how many of them the server agreed h2 on by ALPN. */
    this.sessions = 0;
    this.alpnH2 = 0;
    /** Every protocol ALPN chose, with how many sessions chose it. */
    this.alpn = new Map();
    /** GOAWAY frames received: by error code, and the last stream ids they gave. */
    this.goaways = new Map();
    this.lastStreamIds = [];
    /** Requests the server declared unprocessed by GOAWAY (or Node never sent), sent again on a new session. */
    this.unprocessed = 0;
    /** Session errors (apart from the streams they failed, which are counted there). */
    this.sessionErrors = [];
    this.all = new Set();
    for (let i = 0; i < clients; i++) {
      const client = { session: undefined };
      this.#clients.push(client);
      for (let j = 0; j < streams; j++) this.#lanes.push(this.#lane(client));
    }
  }

  /** The client's session for a new request: its current one unless that one is going away. */
  #session(client) {
    const s = client.session;
    if (s !== undefined && !s.closed && !s.destroyed && !s.goneAway) return s;
    const session = http2.connect(this.#url, { ca: this.#ca });
    this.sessions++;
    this.all.add(session);
    session.once('connect', () => {
      const p = String(session.alpnProtocol);
      this.alpn.set(p, (this.alpn.get(p) ?? 0) + 1);
      if (session.alpnProtocol === 'h2') this.alpnH2++;
    });
    session.on('goaway', (code, lastStreamID) => {
      session.goneAway = true;
      session.lastStreamId = Math.min(session.lastStreamId ?? lastStreamID, lastStreamID);
      this.goaways.set(code, (this.goaways.get(code) ?? 0) + 1);
      if (this.lastStreamIds.length < 100) this.lastStreamIds.push(lastStreamID);
    });
    session.on('error', (err) => { if (this.sessionErrors.length < 20) this.sessionErrors.push(`${err.code ?? ''} ${err.message}`.trim()); });
    session.once('close', () => this.all.delete(session));
    client.session = session;
    return session;
  }

  async #lane(client) {
    while (this.#running) await this.#once(client, requestOf(this.kinds[this.#seq++ % this.kinds.length]));
  }

  #once(client, r, t0 = performance.now()) {
    return new Promise((resolve) => {
      const timer = { t: undefined };
      const settle = settler(this, t0, resolve, timer);
      const session = this.#session(client);
      const headers = { ':method': r.method, ':path': r.path, ...(r.payload === null ? {} : { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(r.payload) }) };
      let stream;
      try {
        stream = session.request(headers, { endStream: r.payload === null });
      } catch (err) {
        // A session that cannot take a stream it was given: nothing was sent, but it counts.
        settle(() => this.fail(`${r.name}: ${`${err.code ?? ''} ${err.message}`.trim()}`, false));
        return;
      }
      let status = 0;
      let frameError = '';
      const parts = [];
      // A frame Node could not send: for HEADERS, the request never left this process.
      stream.on('frameError', (type, code) => { frameError = ` (frame type ${type} not sent: ${code})`; });
      stream.on('response', (h) => { status = Number(h[':status']); });
      stream.on('data', (c) => parts.push(c));
      stream.on('end', () => settle(() => {
        const body = Buffer.concat(parts);
        const wrong = status === 200 ? wrongBody(r, body) : `status ${status}`;
        if (wrong !== undefined) this.fail(`${r.name}: ${wrong}`, false);
        else this.record(r.name, body);
      }));
      let headersNotSent = false;
      let handedOn = false;
      // HEADERS (frame type 1) Node could not send: the request never left this process.
      stream.on('frameError', (type) => { if (type === 1) headersNotSent = true; });
      stream.on('error', (err) => {
        // Judged once the GOAWAY that refused it has been seen (its event may come after).
        setImmediate(() => {
          const unprocessed = status === 0 && stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM
            && (headersNotSent || (session.lastStreamId !== undefined && stream.id > session.lastStreamId));
          if (unprocessed) {
            this.unprocessed++;
            handedOn = true;
            clearTimeout(timer.t);
            resolve(this.#once(client, r, t0));
            return;
          }
          settle(() => this.fail(`${r.name}: ${`${err.code ?? ''} ${err.message}`.trim()}${frameError}`, false));
        });
      });
      stream.on('close', () => setImmediate(() => setImmediate(() => !handedOn && settle(() => this.fail(`${r.name}: stream closed before its end (RST_STREAM ${stream.rstCode})`, false)))));
      if (this.#timeoutMs > 0) timer.t = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), this.#timeoutMs);
      if (r.payload !== null) stream.end(r.payload);
    });
  }

  async stop() {
    this.#running = false;
    await Promise.all(this.#lanes);
    await Promise.all([...this.all].map((s) => new Promise((resolve) => {
      if (s.destroyed) { resolve(); return; }
      s.once('close', resolve);
      s.close();
    })));
    return this.result;
  }
}
