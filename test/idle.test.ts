import { describe, expect, it } from 'vitest';
import { CONNECTIONS_HANDED_OVER, MEMORY_RELEASED, UPGRADED } from '../src/messages.js';
import { has } from '../src/internals/index.js';
import { expectNothingLeft, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { RawClient } from './helpers/raw-client.js';
import { waitFor } from './helpers/wait.js';

const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
const CLIENTS = 20;

/** The worker's count of idle connections it holds as bare handles, once it is `n`. */
async function idleHeld(hp: Hotproxy, n: number, what: string): Promise<void> {
  await waitFor(async () => (await hp.status())?.workers?.[0]?.idle === n, what, 15_000);
}

async function openAnswered(hp: Hotproxy, n: number): Promise<RawClient[]> {
  const clients = await Promise.all(Array.from({ length: n }, () => RawClient.open(hp.port)));
  for (const c of clients) c.send(GET);
  for (const c of clients) await c.until((t) => c.count(200) === 1, 'the first answer');
  return clients;
}

// The raw engine keeps an idle keep-alive connection as its bare handle after a second (no
// socket, no streams: a KiB instead of several); its next bytes make it a connection again.
describe.skipIf(!has('stream-wrap') || !has('handover'))('idle keep-alive connections held as bare handles', () => {
  it('answer their next requests, pipelined ones too, on the same connection, and are held again after', async () => {
    const hp = await startHotproxy(['--engine', 'raw']);
    const clients = await openAnswered(hp, CLIENTS);
    await idleHeld(hp, CLIENTS, 'every connection to be held bare');
    for (const c of clients) c.send(GET + GET + GET);
    for (const c of clients) await c.until(() => c.count(200) === 4, 'three pipelined answers');
    expect(clients.map((c) => [c.closed, c.count(200)])).toEqual(clients.map(() => [false, 4]));
    await idleHeld(hp, CLIENTS, 'every connection to be held bare again');
    for (const c of clients) c.send(GET);
    for (const c of clients) await c.until(() => c.count(200) === 5, 'the answer after the second idle spell');
    expect(clients.every((c) => !c.closed)).toBe(true);
    for (const c of clients) c.close();
    expect(await hp.stop()).toBe(0);
    await expectNothingLeft(hp);
  });

  it('a client that closes one leaves no connection behind', async () => {
    const hp = await startHotproxy(['--engine', 'raw']);
    const clients = await openAnswered(hp, 3);
    await idleHeld(hp, 3, 'the connections to be held bare');
    clients[0]!.close();
    await waitFor(async () => (await hp.status())?.workers?.[0]?.connections === 2, 'the closed one to be gone');
    expect((await hp.status())?.workers?.[0]?.idle).toBe(2);
    for (const c of clients.slice(1)) c.close();
    await waitFor(async () => (await hp.status())?.workers?.[0]?.connections === 0, 'all to be gone');
    expect(await hp.stop()).toBe(0);
  });

  it('the keep-alive timeout closes one held bare, as any idle connection', async () => {
    const hp = await startHotproxy(['--engine', 'raw', '--keepalive-timeout', '3s']);
    const [c] = await openAnswered(hp, 1);
    await idleHeld(hp, 1, 'the connection to be held bare');
    const t0 = Date.now();
    await waitFor(() => c!.closed, 'the proxy to close it', 10_000);
    // Idle since its answer, more than a second before t0: closed at about 3 s of idleness.
    expect(c!.closedAt - t0).toBeLessThan(3_000);
    expect(await hp.stop()).toBe(0);
  });

  it('an upgrade hands them over, and they are answered by the new worker', async () => {
    const hp = await startHotproxy(['--engine', 'raw']);
    const clients = await openAnswered(hp, 5);
    await idleHeld(hp, 5, 'the connections to be held bare');
    expect((await hp.upgrade()).msg).toBe(UPGRADED);
    const handed = await hp.waitForLog(CONNECTIONS_HANDED_OVER);
    expect(handed.handedOver).toBe(5);
    for (const c of clients) c.send(GET);
    for (const c of clients) await c.until(() => c.count(200) === 2, 'the answer from the new worker');
    expect(clients.every((c) => !c.closed)).toBe(true);
    for (const c of clients) c.close();
    expect(await hp.stop()).toBe(0);
  });

  it('once 1,000 of them are held bare, the quiet worker gives their memory back, once, and they all answer after', async () => {
    const hp = await startHotproxy(['--engine', 'raw']);
    const clients: RawClient[] = [];
    for (let i = 0; i < 4; i++) clients.push(...(await openAnswered(hp, 250)));
    await idleHeld(hp, 1_000, 'all 1,000 to be held bare');
    const released = await hp.waitForLog(MEMORY_RELEASED);
    expect(released.shed).toBe(1_000);
    for (const c of clients) c.send(GET);
    for (const c of clients) await c.until(() => c.count(200) === 2, 'the answer after');
    expect(clients.filter((c) => c.closed)).toEqual([]);
    expect(hp.logs.filter((l) => l.msg === MEMORY_RELEASED)).toHaveLength(1);
    for (const c of clients) c.close();
    expect(await hp.stop()).toBe(0);
  });
});
