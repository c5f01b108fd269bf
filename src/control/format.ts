// What the control commands print: `hotproxy status` for people, and each command's answer.
import type { Status } from '../master/status.js';
import type { ControlCommand, ControlResponse } from './protocol.js';

export function formatAnswer(cmd: Exclude<ControlCommand, 'stop'>, res: ControlResponse): string {
  switch (cmd) {
    case 'status':
      return formatStatus(res as unknown as Status);
    case 'reload':
      if (res.canary !== undefined) return `canary generation ${res.gen} (pids ${(res.pids as number[]).join(', ')}) serves ${res.canary as number} % of clients: ${formatRelease(res.command as string[], res.envKeys as string[])}; hotproxy promote completes it, hotproxy rollback ends it`;
      return `deployed generation ${res.gen} (pids ${(res.pids as number[]).join(', ')}) in ${res.ms} ms: ${formatRelease(res.command as string[], res.envKeys as string[])}`;
    case 'promote':
      return `promoted generation ${res.gen} (pids ${(res.pids as number[]).join(', ')}): it takes all traffic now`;
    case 'rollback':
      return `rolled back to generation ${res.gen} (pids ${(res.pids as number[]).join(', ')}) in ${res.ms} ms${res.warm ? ', warm' : ', deployed anew'}: ${formatRelease(res.command as string[], res.envKeys as string[])}`;
    case 'upgrade':
      return `upgraded proxy workers (pids ${(res.pids as number[]).join(', ')}) in ${res.ms} ms`;
    case 'pause':
      return `paused: nothing in flight (waited ${res.waitedMs} ms); new requests are held until hotproxy resume, or until ${res.until as string} (--max-pause), when they get 503`;
    case 'resume':
      return res.wasPaused
        ? `resumed after ${res.pausedMs} ms; ${res.held} held ${res.held === 1 ? 'request' : 'requests'} released in order`
        : 'not paused; nothing to resume';
  }
}

export function formatStatus(s: Status): string {
  const lines = [
    `hotproxy ${s.pid}  ${s.state}  ${s.mode} mode  up ${age(s.uptimeMs)}  listening on ${[...s.listen, ...(s.listenTls ?? []).map((a) => `${a} (tls)`)].join(', ')}${s.deploying ? '  (deploying)' : ''}`,
  ];
  const p = s.paused;
  if (p) {
    const waiting = p.state === 'pausing' ? '  (waiting for in-flight requests)' : '';
    lines.push(`  paused ${age(Date.now() - Date.parse(p.since))} since ${p.since}  ends by ${p.until}  held ${p.held}${waiting}`);
  }
  for (const g of s.generations) {
    const share = s.canary?.gen === g.gen ? `  (${s.canary.percent} % of clients)` : '';
    lines.push(`  generation ${g.gen}  ${g.state.padEnd(8)}  pids ${g.pids.join(',') || '-'}  healthy ${g.healthy}/${g.size}  age ${age(g.ageMs)}  in flight ${g.inflight}${share}`);
    lines.push(`    command ${formatRelease(g.command, g.envKeys)}`);
    for (const i of g.instances ?? []) {
      const why = i.reason === undefined ? '' : `  (${i.reason}${i.outForMs === undefined ? '' : `, out of rotation ${age(i.outForMs)}`})`;
      lines.push(`    instance ${i.instance}  pid ${i.pid ?? '-'}  ${i.health}${why}`);
    }
  }
  for (const w of s.workers) {
    const held = w.held ? `  held ${w.held}` : '';
    const idle = w.idle ? ` (${w.idle} idle)` : '';
    lines.push(`  proxy worker ${w.worker}  pid ${w.pid}  connections ${w.connections ?? '?'}${idle}  in flight ${w.inflight ?? '?'}${held}`);
  }
  return lines.join('\n');
}

/** The command as a shell would take it back, and the names of the variables added. */
function formatRelease(command: string[], envKeys: string[]): string {
  const quoted = command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  return envKeys.length ? `${quoted}  (env ${envKeys.join(', ')})` : quoted;
}

function age(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
