#!/usr/bin/env node
// Maps command-line flags to Options and calls the library. The only place that exits.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { isInherited, parseListen, type Address } from './address.js';
import { describe, HotproxyError, UsageError } from './errors.js';
import { createLogger } from './log.js';
import { runControl } from './control/client.js';
import { applyConfigFile, configPath, envName } from './config-file.js';
import type { ControlCommand } from './control/protocol.js';
import { Master } from './master/master.js';
import { handleSignals } from './master/signals.js';
import { parseCount, parseDuration, resolveOptions, type Options } from './options.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

// Repeatable, and comma-separated lists too (one HOTPROXY_LISTEN variable can name several).
const collect = (v: string, prev: string[]): string[] => [...prev, ...v.split(',').map((x) => x.trim()).filter(Boolean)];
const duration = (flag: string) => (v: string): number => parseDuration(flag, v);
const count = (flag: string) => (v: string): number => parseCount(flag, v);
const adminAddress = (v: string): Address => {
  const a = parseListen(v);
  if (isInherited(a)) throw new UsageError('--metrics takes an address or a socket path, not a socket from systemd');
  return a;
};

/** Every option can also come from HOTPROXY_<NAME> (set before commander registers it). */
class EnvCommand extends Command {
  override addOption(o: Option): this {
    return super.addOption(o.env(envName(o)));
  }
}

function program(): Command {
  return new EnvCommand('hotproxy')
    .usage('[options] -- <command> [args...]')
    .description('Zero-downtime reverse proxy and process supervisor. kill -HUP deploys a new generation.')
    .version(pkg.version, '-V, --version')
    .argument('[command...]', 'the backend command, after -- (or "command" in the config file)')
    .option('-l, --listen <addr>', 'public address: PORT, HOST:PORT, [V6]:PORT, a socket path, or a socket from systemd: fd:N, fdname:NAME (repeatable; none = every socket systemd passed)', collect, [])
    .addOption(new Option('--mode <mode>', 'proxy mode').choices(['http', 'tcp']).default('http'))
    .addOption(new Option('--engine <engine>', 'http mode data path: raw (net + llhttp) or node (Node http server and client)').choices(['raw', 'node']))
    .addOption(new Option('--backend <kind>', 'how backends get their socket').choices(['unix', 'tcp', 'port-env']).default('unix'))
    .option('-w, --workers <n>', 'backend instances per generation', count('--workers'))
    .option('--proxy-workers <n>', 'proxy worker processes', count('--proxy-workers'))
    .option('--deploy-timeout <duration>', 'how long a new generation may take to become healthy (30s)', duration('--deploy-timeout'))
    .option('--drain-timeout <duration>', 'how long in-flight requests may take, and then the exit after SIGTERM (30s)', duration('--drain-timeout'))
    .option('--upgrade-timeout <duration>', 'how long new proxy workers may take to be ready in an upgrade (30s)', duration('--upgrade-timeout'))
    .option('--queue-timeout <duration>', 'how long a request waits for a healthy backend before 503 (10s)', duration('--queue-timeout'))
    .option('--header-timeout <duration>', 'how long a client may take to send request headers (30s)', duration('--header-timeout'))
    .option('--keepalive-timeout <duration>', 'idle time before the proxy closes a client connection (65s)', duration('--keepalive-timeout'))
    .option('--health-path <path>', 'http mode: GET this path; healthy = status < 500 (/)')
    .option('--health-interval <duration>', 'time between health checks during a deploy (50ms)', duration('--health-interval'))
    .option('--health-rise <n>', 'consecutive passing checks needed (2)', count('--health-rise'))
    .option('--health-cmd <command>', 'shell command; exit 0 = healthy ($HOTPROXY_BACKEND_ADDRESS is set)')
    .option('--ready-delay <duration>', 'healthy = still alive after this long (tcp mode default: 1s)', duration('--ready-delay'))
    .option('--runtime-dir <dir>', 'where the private runtime directory is created ($XDG_RUNTIME_DIR or the temp dir)')
    .option('--trust-proxy <cidr>', 'keep X-Forwarded-* from these peers (repeatable)', collect, [])
    .option('--control <path>', 'control socket (default: control.sock in the runtime directory)')
    .option('--pid-file <path>', 'write the master pid here once serving; removed at exit')
    .option('--status-file <path>', "Server::Starter's status file: <generation>:<pid> lines")
    .option('--metrics <addr>', 'admin listener, never public: /metrics (Prometheus), /ready, /live (e.g. 127.0.0.1:9090)', adminAddress)
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .addOption(new Option('--log-format <format>', 'log format').choices(['json', 'pretty', 'auto']).default('auto'))
    .option('--config <file>', 'JSON file of settings: {"listen": ["8888"], "drain-timeout": "30s", "command": ["node", "app.js"]}')
    .passThroughOptions()
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeErr: () => {} })
    .addHelpText('after', `
Control a running instance:
  hotproxy reload | upgrade | status [--json] | stop   [--pid-file F | --control S]

Examples:
  hotproxy --listen 8888 -- node app.js
  hotproxy --listen 8888 --workers 2 -- python3 app.py
  hotproxy --listen 5432 --mode tcp -- ./my-tcp-server
  kill -HUP <pid>     deploy a new generation; no request fails
  kill -USR2 <pid>    replace the proxy workers with the code on disk; connections move
  kill -TERM <pid>    drain and stop

Every option can also come from HOTPROXY_<NAME> (HOTPROXY_DRAIN_TIMEOUT=10s) or the --config
file; the command line wins over the environment, which wins over the file.`);
}

function parseArgs(argv: string[]): Options {
  const cmd = program();
  try {
    cmd.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) process.exit(0); // --help, --version
      const text = err.code === 'commander.missingArgument'
        ? 'missing backend command: hotproxy [options] -- <command> [args...]'
        : err.message.replace(/^error: /, '');
      throw new UsageError(text);
    }
    throw err;
  }
  const file = configPath(argv.slice(2));
  const fileCommand = file === undefined ? undefined : applyConfigFile(cmd, file);
  const f = cmd.opts();
  return resolveOptions({
    listen: (f.listen as string[]).map(parseListen),
    command: cmd.args.length > 0 ? cmd.args : fileCommand ?? [],
    mode: f.mode, engine: f.engine, backend: f.backend, workers: f.workers, proxyWorkers: f.proxyWorkers,
    deployTimeoutMs: f.deployTimeout, drainTimeoutMs: f.drainTimeout, upgradeTimeoutMs: f.upgradeTimeout, queueTimeoutMs: f.queueTimeout,
    headerTimeoutMs: f.headerTimeout, keepAliveTimeoutMs: f.keepaliveTimeout,
    healthPath: f.healthPath, healthIntervalMs: f.healthInterval, healthRise: f.healthRise,
    healthCmd: f.healthCmd, readyDelayMs: f.readyDelay, runtimeDir: f.runtimeDir,
    trustProxy: f.trustProxy, control: f.control, pidFile: f.pidFile, statusFile: f.statusFile,
    logLevel: f.logLevel, logFormat: f.logFormat, metrics: f.metrics,
  });
}

const CONTROL_COMMANDS = new Set(['reload', 'upgrade', 'status', 'stop']);

function controlProgram(cmd: string): Command {
  return new Command(`hotproxy ${cmd}`)
    .description(`${cmd} a running hotproxy`)
    .option('--control <path>', 'its control socket')
    .option('--pid-file <path>', 'its pid file')
    .option('--runtime-dir <dir>', 'where its runtime directory is, if it was started with --runtime-dir')
    .option('--json', 'print the answer as JSON')
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
}

async function control(cmd: ControlCommand, argv: string[]): Promise<never> {
  const p = controlProgram(cmd);
  try {
    p.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && err.exitCode === 0) process.exit(0);
    die(new UsageError((err as Error).message.replace(/^error: /, '')));
  }
  const f = p.opts();
  try {
    const { code, out } = await runControl(cmd, { control: f.control, pidFile: f.pidFile, runtimeDir: f.runtimeDir, json: f.json });
    process.stdout.write(`${out}\n`);
    process.exit(code);
  } catch (err) {
    die(err);
  }
}

function die(err: unknown): never {
  const code = err instanceof HotproxyError ? err.exitCode : 1;
  const hint = err instanceof UsageError && err.code === 'E_USAGE' ? ' (see hotproxy --help)' : '';
  process.stderr.write(`hotproxy: ${describe(err)}${hint}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const sub = process.argv[2];
  if (sub !== undefined && CONTROL_COMMANDS.has(sub)) await control(sub as ControlCommand, process.argv.slice(3));
  let options: Options;
  try {
    options = parseArgs(process.argv);
  } catch (err) {
    die(err);
  }
  const log = createLogger({ level: options.logLevel, format: options.logFormat });
  const master = new Master(options, log);
  let stopRequested = false;
  handleSignals(master, log, (code) => process.exit(code));
  process.on('SIGTERM', () => (stopRequested = true)).on('SIGINT', () => (stopRequested = true));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'Internal error; killing backends');
    master.kill();
    process.exit(1);
  });
  try {
    await master.start();
  } catch (err) {
    if (stopRequested) return; // a stop signal during start-up: the signal handler exits
    die(err);
  }
  // Serving. A stop through the control socket ends the process too.
  void master.stopped.then(() => process.exit(0));
}

void main();
