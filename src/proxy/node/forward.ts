// One exchange of the node engine: a client request from Node's http server forwarded with
// Node's http client, and the answer relayed — 1xx, head, body with backpressure both ways,
// trailers both ways. Public APIs only: this is the data path that works on any Node.
import http from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Target } from '../../ipc.js';
import { UpstreamTimeoutError, UpstreamUnhealthyError } from '../../errors.js';
import type { AccessEntry } from '../access-line.js';
import { h2Fields, relayInformationalH2 } from '../tls/h2-request.js';
import { REQ_BODY, REQ_CHUNKED, requestFields, responseFields, plainFields, type HeadOut, type Peer, type RequestOut } from '../headers.js';

/** What the engine gives an exchange and hears back from it. */
export interface ForwardContext {
  agent(target: Target): http.Agent;
  /** The client connection closes after this answer (the worker is stopping). */
  closing(): boolean;
  /** A canary's Set-Cookie for the answer (the client's side). */
  setCookie?: string;
  /** The exchange failed before a response byte went out (the engine answers or retries). */
  failed(err: Error, target: Target): void;
  /** The backend went silent after its answer began: the client connection was cut. */
  stalled(target: Target): void;
  done(target: Target): void;
  /** --backend-timeout. */
  timeoutMs: number;
  /** Whether the request may go to another instance (idempotent, no body). */
  resendable: boolean;
  /** Registers the exchange's way out if its instance leaves rotation; returns the unregister. */
  track(target: Target, abandon: () => void): () => void;
}

/** The request's fields for the backend, hop-by-hop ones left out; `out` tells about its body and ID. */
export function upstreamFields(req: http.IncomingMessage, peer: Peer, out: RequestOut, raw = req.rawHeaders): string[] {
  const fields = requestFields(raw, peer, false, out, []);
  // The backend decides whether it wants the body (the engine relays its 100).
  if (expectsContinue(req)) fields.push('expect', '100-continue');
  if (out.flags & REQ_CHUNKED) fields.push('transfer-encoding', 'chunked');
  // Node refuses a Trailer field on a request it will not send chunked (it throws).
  else dropField(fields, 'trailer');
  return fields;
}

function expectsContinue(req: http.IncomingMessage): boolean {
  const e = req.headers.expect;
  // HTTP/2 keeps the expectation (RFC 9110 §10.1.1): the 100 comes as a HEADERS frame.
  return e !== undefined && e.trim().toLowerCase() === '100-continue' && (req.httpVersion === '1.1' || req.httpVersionMajor === 2);
}

/** `entry`: the request's access-log line, when there is an access log. */
export function forward(ctx: ForwardContext, req: http.IncomingMessage, res: http.ServerResponse, target: Target, fields: string[], flags: number,
  entry: AccessEntry | null): void {
  let settled = false;
  let untrack = (): void => {};
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    untrack();
    res.off('close', onClientClose);
    ctx.done(target);
    return true;
  };
  const a = target.address;
  let up: http.ClientRequest;
  try {
    up = request(ctx, req, target, a, fields);
  } catch (err) {
    // Node's client refused the request as it stands: the proxy's fault, not the client's.
    settle();
    ctx.failed(err as Error, target);
    return;
  }
  // Unsettled, the answer is not complete: the client left before it (an HTTP/2 stream
  // reset says writableFinished too, so that cannot be the test).
  const onClientClose = (): void => {
    if (settle()) up.destroy();
  };
  res.on('close', onClientClose);
  // Nothing of an answer yet, and it may go elsewhere: an instance that leaves rotation
  // (hung) lets go of it at once.
  let answered = false;
  // The answer's reading is paused for a slow client: the silence is ours, not the backend's.
  let paused = false;
  if (ctx.resendable) untrack = ctx.track(target, () => { if (!answered) up.destroy(new UpstreamUnhealthyError()); });
  // Node's client tells of an answer once its head is parsed: that is its first byte here.
  const firstByte = (): void => { if (entry !== null && entry.ttfb === 0n) entry.ttfb = process.hrtime.bigint(); };
  up.on('information', (info) => { answered = true; firstByte(); relayInformational(req, res, info.statusCode, info.rawHeaders); });
  up.on('timeout', () => {
    // Still uploading what the client has not sent yet: the backend is waiting for us.
    if (paused || (!up.writableFinished && up.writableLength === 0 && !req.complete)) return;
    up.destroy(new UpstreamTimeoutError(ctx.timeoutMs));
  });
  up.on('error', (err) => {
    if (!settle()) return;
    if (res.headersSent) {
      cutByBackend(res, entry);
      if (err instanceof UpstreamTimeoutError) ctx.stalled(target);
    } else ctx.failed(err, target);
  });
  up.on('response', (ures) => {
    answered = true;
    firstByte();
    const out = responseFields(ures.rawHeaders, UNUSED, []);
    // Node refuses a Trailer field on a response it will not send chunked (it throws).
    if (!chunkedReply(req, ures.statusCode!, out)) dropField(out, 'trailer');
    // A 204 has no Content-Length (RFC 9110 §8.6); HTTP/2 peers reset a stream whose 204 says one.
    if (req.httpVersionMajor === 2 && ures.statusCode === 204) dropField(out, 'content-length');
    // In the array, not by setHeader: mixing the two makes Node keep one of repeated fields.
    if (ctx.closing()) out.push('connection', 'close');
    if (ctx.setCookie !== undefined) out.push('set-cookie', ctx.setCookie);
    try {
      // The backend's reason phrase, even an empty one; HTTP/2 has none (Node warns of one).
      if (req.httpVersionMajor === 2) res.writeHead(ures.statusCode!, out);
      else res.writeHead(ures.statusCode!, ures.statusMessage ?? '', out);
    } catch (err) {
      // A head Node's server will not send (it validates what llhttp let through).
      up.destroy();
      if (settle()) ctx.failed(err as Error, target);
      return;
    }
    ures.on('data', (chunk: Buffer) => {
      if (entry !== null) entry.bytes += chunk.length;
      if (!res.write(chunk)) {
        ures.pause();
        paused = true;
        // The silence timer fired and was ignored while paused, or is about to: a fresh one.
        res.once('drain', () => { paused = false; up.setTimeout(ctx.timeoutMs); ures.resume(); });
      }
    });
    ures.on('end', () => {
      if (!settle()) return;
      if (ures.rawTrailers.length > 0) {
        const trailers = plainFields(ures.rawTrailers, []);
        // HTTP/2's compatibility response takes trailers as an object only (its keys are the names).
        res.addTrailers(req.httpVersionMajor === 2 ? h2Fields(trailers) : pairs(trailers));
      }
      res.end();
      // Answered before the client sent all of its body: the backend connection is in the middle
      // of a request and must not serve another (an HTTP/2 stream may even end short, and Node's
      // client would then hand the connection back with the backend waiting for the rest).
      if (!req.complete) up.destroy();
    });
    // A response cut short must look cut short to the client, never complete.
    ures.on('close', () => { if (!ures.complete && settle()) cutByBackend(res, entry); });
    ures.on('error', () => { if (settle()) cutByBackend(res, entry); });
  });
  if (!(flags & REQ_BODY)) { up.end(); return; }
  req.on('data', (chunk: Buffer) => {
    // The upstream request is gone (the client left, the backend broke off): the rest of the
    // upload is read and dropped, never left waiting for a 'drain' that cannot come.
    if (up.destroyed) return;
    if (!up.write(chunk)) { req.pause(); up.once('drain', () => req.resume()); up.once('close', () => req.resume()); }
  });
  req.on('end', () => {
    if (req.rawTrailers.length > 0 && flags & REQ_CHUNKED) up.addTrailers(pairs(plainFields(req.rawTrailers, [])));
    up.end();
  });
}

/** The backend broke off its answer (or went silent in it): the client connection is cut. */
function cutByBackend(res: http.ServerResponse, entry: AccessEntry | null): void {
  if (entry !== null) entry.cut = 'backend';
  res.destroy();
}

function request(ctx: ForwardContext, req: http.IncomingMessage, target: Target, a: Target['address'], fields: string[]): http.ClientRequest {
  return http.request({
    agent: ctx.agent(target),
    ...('path' in a ? { socketPath: a.path } : { host: a.host, port: a.port }),
    method: req.method,
    path: req.url,
    headers: fields,
    setHost: false,
    // Idle time on the upstream socket while this request owns it: --backend-timeout.
    timeout: ctx.timeoutMs,
  });
}

/** Relays a 1xx as far as Node's server can: 100, 102, 103 (others have no public API). */
function relayInformational(req: http.IncomingMessage, res: http.ServerResponse, status: number, raw: string[]): void {
  if (req.httpVersion === '1.0' || res.headersSent) return;
  if (req.httpVersionMajor === 2) { relayInformationalH2(res as unknown as Http2ServerResponse, status, raw); return; }
  if (status === 100) { res.writeContinue(); return; }
  // HTTP/2's compatibility response has no writeProcessing.
  if (status === 102) { if (typeof res.writeProcessing === 'function') res.writeProcessing(); return; }
  if (status !== 103) return;
  const hints: Record<string, string[]> = {};
  const fields = plainFields(raw, []);
  for (let i = 0; i < fields.length; i += 2) {
    const k = fields[i]!.toLowerCase();
    // Node accepts one link per value; a backend may send several in one field.
    const values = k === 'link' ? splitLinks(fields[i + 1]!) : [fields[i + 1]!];
    (hints[k] ??= []).push(...values);
  }
  // Node sends early hints only with a Link field.
  if (hints.link !== undefined) res.writeEarlyHints(hints);
}

/** `<a>; rel=x, <b>; rel=y` → each link; commas inside <…> or quotes stay. */
function splitLinks(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let angle = false;
  let quote = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '"' && !angle) quote = !quote;
    else if (c === '<' && !quote) angle = true;
    else if (c === '>' && !quote) angle = false;
    else if (c === ',' && !angle && !quote) { out.push(value.slice(start, i).trim()); start = i + 1; }
  }
  out.push(value.slice(start).trim());
  return out.filter((s) => s !== '');
}

/** Whether Node will send this response chunked (the only framing that carries trailers). */
function chunkedReply(req: http.IncomingMessage, status: number, fields: string[]): boolean {
  if (req.method === 'HEAD' || status === 204 || status === 304 || req.httpVersion === '1.0') return false;
  for (let i = 0; i < fields.length; i += 2) if (fields[i]!.toLowerCase() === 'content-length') return false;
  return true;
}

function dropField(fields: string[], name: string): void {
  for (let i = fields.length - 2; i >= 0; i -= 2) if (fields[i]!.toLowerCase() === name) fields.splice(i, 2);
}

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/** Framing flags the node engine leaves to Node. */
const UNUSED: HeadOut = { flags: 0, keepAliveHeader: undefined };
