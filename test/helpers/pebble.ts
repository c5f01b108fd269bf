// pebble, Let's Encrypt's ACME test server, with pebble-challtestsrv as its DNS: every name
// resolves to 127.0.0.1, so pebble's HTTP-01 validation really connects to `httpPort` there and
// asks for the token. pebble's own HTTPS listener gets a certificate made here with openssl;
// the root that signs what it issues is made at each start and fetched from its management port.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { Proc } from '../../harness/procs.js';
import { freePort, installed } from './host.js';
import { makeCert, tempDir } from './tls.js';
import { waitFor } from './wait.js';

export const pebbleInstalled = installed('pebble') && installed('pebble-challtestsrv');

export interface PebbleOptions {
  /** Where pebble's validator connects for HTTP-01 (on 127.0.0.1, as the DNS answers). */
  httpPort: number;
  /** The lifetime of issued certificates (pebble's default is five years). */
  validitySeconds?: number;
}

export interface Pebble {
  /** The ACME directory URL, for --acme-directory. */
  directory: string;
  /** PEM file of pebble's own listener certificate, for --acme-ca. */
  caFile: string;
  /** The root that signs the certificates pebble issues (PEM). */
  root: string;
  stop(): Promise<void>;
}

const running = new Set<Pebble>();

/** For afterEach: stops every pebble a test started, whether or not it passed. */
export async function stopPebbles(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = tempDir('hotproxy-pebble-');
  const own = makeCert(dir, 'pebble', ['localhost']);
  const [dnsPort, ctsMgmt, acmePort, mgmtPort, tlsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const config = join(dir, 'pebble.json');
  writeFileSync(config, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`, managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: own.cert, privateKey: own.key, httpPort: opts.httpPort, tlsPort,
      ...(opts.validitySeconds ? { certificateValidityPeriod: opts.validitySeconds } : {}),
    },
  }));
  // Its DNS only (the challenge servers it could run are hotproxy's job here); no AAAA
  // answers, so the validator dials 127.0.0.1, where the listener under test is.
  const dns = new Proc('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
    '-management', `127.0.0.1:${ctsMgmt}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''], { name: 'pebble-challtestsrv' });
  const pebble = new Proc('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], {
    name: 'pebble', cwd: dir, env: { PEBBLE_VA_NOSLEEP: '1' },
  });
  const handle: Pebble = {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    caFile: own.cert,
    root: '',
    stop: async () => {
      running.delete(handle);
      await Promise.all([pebble.stop(5_000), dns.stop(5_000)]);
    },
  };
  running.add(handle);
  const up = (p: Proc): void => { if (!p.alive) throw new Error(`${p.name} exited (${p.exitCode}): ${p.stderr}`); };
  try {
    await waitFor(async () => { up(dns); return (await get(`http://127.0.0.1:${ctsMgmt}/`, own.pem)) !== undefined; }, 'pebble-challtestsrv to listen', 10_000);
    await waitFor(async () => { up(pebble); return (await get(handle.directory, own.pem)).includes('newOrder'); }, 'pebble to serve its directory', 10_000);
    handle.root = await get(`https://127.0.0.1:${mgmtPort}/roots/0`, own.pem);
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}

/** The body of a GET (any status), trusting `ca` for https. */
export function get(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onRes = (res: http.IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body)).on('error', reject);
    };
    (url.startsWith('https:') ? https.get(url, { ca, agent: false }, onRes) : http.get(url, { agent: false }, onRes)).on('error', reject);
  });
}
