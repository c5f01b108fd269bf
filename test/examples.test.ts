// Runs every example exactly as examples/README.md tells a reader to (the commands are read from
// it, so the docs cannot drift), on a free port instead of 8888: two HUP swaps under load with
// no failed request, traffic on each new generation, then a clean stop. An example whose
// server is not installed says it skipped.
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { expectNothingLeft, ROOT, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { waitFor } from './helpers/wait.js';
import { installed } from './helpers/host.js';
import { DEPLOYED } from '../src/messages.js';

interface Example { dir: string; args: string[]; command: string[] }

const readme = readFileSync(`${ROOT}examples/README.md`, 'utf8');
const examples: Example[] = [];
for (const line of readme.split('\n')) {
  const m = /^- `([\w-]+)\/`.*?`npx hotproxy ([^`]+)`/.exec(line);
  if (!m) continue;
  const words = m[2]!.trim().split(/\s+/);
  const sep = words.indexOf('--');
  examples.push({ dir: m[1]!, args: words.slice(0, sep), command: words.slice(sep + 1) });
}


const generationIn = (reply: string): number | undefined => {
  const m = /generation (\d+)/.exec(reply);
  return m ? Number(m[1]) : undefined;
};

/** One GET on a fresh connection: the generation that answered it. */
function probe(url: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? generationIn(body) : undefined));
    }).on('error', reject);
  });
}

/** One line on a new connection, no retry: the reply line, or an error. */
function tcpOnce(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let buf = '';
    c.setEncoding('utf8');
    c.setTimeout(5000, () => c.destroy(new Error('no reply within 5 s')));
    c.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) { resolve(buf.slice(0, i)); c.end(); }
    });
    c.on('error', reject);
    c.on('close', () => reject(new Error(`closed without a reply line (got ${JSON.stringify(buf)})`)));
    c.end(`${line}\n`);
  });
}

/** Lanes that each open a new connection per request and count every one that fails. */
class TcpLoad {
  ok = 0;
  failed = 0;
  readonly errors: string[] = [];
  readonly byGen = new Map<number, number>();
  private running = true;
  private lanes: Promise<void>[];

  constructor(private port: number, lanes: number) {
    this.lanes = Array.from({ length: lanes }, (_, i) => this.lane(i));
  }

  private async lane(n: number): Promise<void> {
    for (let i = 0; this.running; i++) {
      const line = `lane ${n} line ${i}`;
      try {
        const reply = await tcpOnce(this.port, line);
        const gen = generationIn(reply);
        if (gen === undefined || !reply.endsWith(`: ${line}`)) throw new Error(`bad reply ${JSON.stringify(reply)}`);
        this.ok++;
        this.byGen.set(gen, (this.byGen.get(gen) ?? 0) + 1);
      } catch (err) {
        this.failed++;
        if (this.errors.length < 20) this.errors.push((err as Error).message);
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.lanes);
  }
}

async function swapHttp(hp: Hotproxy): Promise<void> {
  expect(await probe(hp.url)).toBe(1);
  const load = new Load(hp.url, 10);
  await waitFor(() => load.result.ok > 20, 'load to start');
  for (let i = 0; i < 2; i++) {
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOYED);
    // Once a request on a fresh connection reaches green, every new request routes there.
    await waitFor(async () => (await probe(hp.url)) === outcome.gen, `generation ${outcome.gen} to answer`);
    const ok = load.result.ok;
    await waitFor(() => load.result.ok > ok + 20, `load traffic on generation ${outcome.gen}`);
  }
  const result = await load.stop();
  expect(result.errors).toEqual([]);
  expect(result.failed).toBe(0);
}

async function swapTcp(hp: Hotproxy): Promise<void> {
  expect(generationIn(await tcpOnce(hp.port, 'hello'))).toBe(1);
  const load = new TcpLoad(hp.port, 5);
  await waitFor(() => load.ok > 20, 'load to start');
  for (let i = 0; i < 2; i++) {
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOYED);
    const gen = outcome.gen as number;
    await waitFor(() => (load.byGen.get(gen) ?? 0) > 20, `load traffic on generation ${gen}`);
  }
  await load.stop();
  expect(load.errors).toEqual([]);
  expect(load.failed).toBe(0);
}

describe('examples/README.md', () => {
  it('gives a command for every example directory', () => {
    const dirs = readdirSync(`${ROOT}examples`, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    const documented = new Set(examples.map((e) => e.dir));
    // systemd/, docker/ and kubernetes/ are files to install, documented and tested elsewhere.
    expect(dirs.filter((d) => !['systemd', 'docker', 'kubernetes'].includes(d) && !documented.has(d))).toEqual([]);
    for (const e of examples) {
      expect(e.args.slice(0, 2)).toEqual(['--listen', '8888']);
      expect(e.command.join(' ')).toMatch(new RegExp(`examples/${e.dir}(/| |$)`));
    }
  });

  for (const e of examples) {
    const bin = e.command[0]!;
    const present = installed(bin);
    if (!present) console.log(`skipped: examples/${e.dir} (${bin} is not installed)`);
    const tcp = e.args[e.args.indexOf('--mode') + 1] === 'tcp';
    it.skipIf(!present)(`examples/${e.dir} runs as documented and swaps twice under ${tcp ? 'new-connection' : 'keep-alive'} load with no failed request`, async () => {
      const hp = await startHotproxy(e.args.slice(2), e.command);
      await (tcp ? swapTcp(hp) : swapHttp(hp));
      expect(await hp.stop()).toBe(0);
      await expectNothingLeft(hp);
      expect(hp.deployedCount()).toBe(3);
      // Nothing the app wrote to stderr looks like a crash.
      expect(hp.logs.filter((l) => l.component === 'backend' && /Traceback|Error|died/.test(l.msg))).toEqual([]);
    });
  }
});
