#!/usr/bin/env node
// Maps command-line flags to Options and calls the library. The only place that exits.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { describe, HotproxyError, UsageError } from './errors.js';
import { createLogger } from './log.js';
import { controlRequest, runControl } from './control/client.js';
import { fromEnv, readConfigFile, settle, type Source } from './config-file.js';
import type { ControlCommand } from './control/protocol.js';
import { Master } from './master/master.js';
import { handleSignals } from './master/signals.js';
import { camelName, CONFIG_FLAG, helpText, OPTIONS, type FlagDoc } from './option-table.js';
import { resolveOptions, type Options } from './options.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

// Commander only splits argv into texts per flag: no defaults, variables or choices of its own,
// which would be a second description of the options. The table reads and checks the texts.
function flagOption(d: FlagDoc, list = false): Option {
  // An empty placeholder is an on/off switch, given bare.
  const o = new Option(`${d.short ? `-${d.short}, ` : ''}--${d.flag}${d.arg ? ` ${d.arg}` : ''}`, helpText(d));
  return list ? o.argParser((v: string, prev: string[] = []) => [...prev, v]) : o;
}

function program(): Command {
  const cmd = new Command('hotproxy')
    .usage('[options] -- <command> [args...]')
    .description('Zero-downtime reverse proxy and process supervisor. kill -HUP deploys a new generation.')
    .version(pkg.version, '-V, --version')
    .argument('[command...]', 'the backend command, after -- (or "command" in the config file)');
  for (const d of OPTIONS) cmd.addOption(flagOption(d, d.type.list));
  return cmd.addOption(flagOption(CONFIG_FLAG))
    .passThroughOptions()
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeErr: () => {} })
    .addHelpText('after', `
Control a running instance (each has --help):
  hotproxy reload [--env K=V]... [-- <command> [args...]]   deploy (another command, with variables)
  hotproxy upgrade | status [--json] | stop
  hotproxy pause [--max-pause 30s] | resume                 hold new requests while nothing runs
  (each takes --pid-file F | --control S | --runtime-dir D to name the instance)

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

/** The texts each flag was given on the command line. */
function fromFlags(cmd: Command): Source {
  const given = cmd.opts();
  const source: Source = new Map();
  for (const d of OPTIONS) {
    const v = given[camelName(d.flag)] as string | string[] | boolean | undefined;
    if (v !== undefined) source.set(d, { texts: () => (Array.isArray(v) ? v : [String(v)]) });
  }
  return source;
}

function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
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
  const path = (cmd.opts().config as string | undefined) ?? (env.HOTPROXY_CONFIG || undefined);
  const file = path === undefined ? undefined : readConfigFile(path);
  const values = settle([fromFlags(cmd), fromEnv(env), file?.source ?? new Map()]);
  return resolveOptions({ ...values, listen: values.listen ?? [], command: cmd.args.length > 0 ? cmd.args : file?.command ?? [] });
}

const CONTROL_HELP: Record<ControlCommand, string> = {
  reload: 'Deploy a new generation and wait until it serves (exit 0) or failed (exit 1, the old one serving on). '
    + 'With -- <command…> and/or --env, that generation runs this command (default: the current one) with exactly these '
    + 'variables added; once it serves, HUP and crash restarts run it too. Of reloads queued behind a deploy, the last one wins.',
  rollback: 'Route back to the previous generation and wait until it serves (exit 0) or failed (exit 1): at once when '
    + '--keep-previous kept it warm (after one health check), otherwise by deploying its command again. The generation '
    + 'rolled back from drains.',
  promote: 'Complete a canary (reload --canary): its generation takes all traffic and the one it ran beside drains '
    + '(or is kept warm with --keep-previous). Waits until done (exit 0) or failed (exit 1).',
  upgrade: 'Replace the proxy workers with the code on disk now; open connections move. Waits until done (exit 0) or failed (exit 1).',
  status: 'Show listeners, a pause, generations (commands, pids, health, in flight) and proxy workers.',
  stop: 'Drain and stop the running hotproxy; waits until its master has exited.',
  pause: 'Hold new requests (neither refused nor sent) and exit 0 once nothing is in flight, e.g. to migrate a database. '
    + 'The pause ends by itself after --max-pause: what it held then gets 503, new requests flow again.',
  resume: 'End a pause: the held requests go on in the order they arrived.',
};

function controlProgram(cmd: ControlCommand): Command {
  const p = new Command(`hotproxy ${cmd}`)
    .description(CONTROL_HELP[cmd])
    .option('--control <path>', 'its control socket')
    .option('--pid-file <path>', 'its pid file')
    .option('--runtime-dir <dir>', 'where its runtime directory is, if it was started with --runtime-dir')
    .option('--json', 'print the answer as JSON')
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
  if (cmd === 'reload') {
    p.usage('[options] [-- <command> [args...]]')
      .argument('[command...]', 'the command the new generation runs, after --')
      .option('--env <KEY=VALUE>', 'a variable for the new generation (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--canary <percent>', 'a canary: the new generation serves this share of clients (sticky per client) beside the current one, until hotproxy promote or rollback');
  }
  if (cmd === 'pause') p.option('--max-pause <d>', 'the longest the pause lasts (default: 30s)');
  return p;
}

async function control(cmd: ControlCommand, argv: string[]): Promise<never> {
  const p = controlProgram(cmd);
  try {
    p.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && err.exitCode === 0) process.exit(0);
    die(new UsageError((err as Error).message.replace(/^error: /, '')), `hotproxy ${cmd}`);
  }
  const f = p.opts();
  try {
    const req = controlRequest(cmd, { env: f.env, maxPause: f.maxPause, command: p.args, canary: f.canary });
    const { code, out } = await runControl(req, { control: f.control, pidFile: f.pidFile, runtimeDir: f.runtimeDir, json: f.json });
    process.stdout.write(`${out}\n`);
    process.exit(code);
  } catch (err) {
    die(err, `hotproxy ${cmd}`);
  }
}

/** `help`: the command whose --help a usage error points to. */
function die(err: unknown, help = 'hotproxy'): never {
  const code = err instanceof HotproxyError ? err.exitCode : 1;
  const hint = err instanceof UsageError && err.code === 'E_USAGE' ? ` (see ${help} --help)` : '';
  process.stderr.write(`hotproxy: ${describe(err)}${hint}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const sub = process.argv[2];
  if (sub !== undefined && Object.hasOwn(CONTROL_HELP, sub)) await control(sub as ControlCommand, process.argv.slice(3));
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
