// Human-readable `hotproxy status`.
import type { Status } from '../master/status.js';

export function formatStatus(s: Status): string {
  const lines = [
    `hotproxy ${s.pid}  ${s.state}  ${s.mode} mode  up ${age(s.uptimeMs)}  listening on ${s.listen.join(', ')}${s.deploying ? '  (deploying)' : ''}`,
  ];
  for (const g of s.generations) {
    lines.push(`  generation ${g.gen}  ${g.state.padEnd(8)}  pids ${g.pids.join(',') || '-'}  healthy ${g.healthy}/${g.size}  age ${age(g.ageMs)}  in flight ${g.inflight}`);
    for (const i of g.instances ?? []) {
      const why = i.reason === undefined ? '' : `  (${i.reason}${i.outForMs === undefined ? '' : `, out of rotation ${age(i.outForMs)}`})`;
      lines.push(`    instance ${i.instance}  pid ${i.pid ?? '-'}  ${i.health}${why}`);
    }
  }
  for (const w of s.workers) {
    lines.push(`  proxy worker ${w.worker}  pid ${w.pid}  connections ${w.connections ?? '?'}  in flight ${w.inflight ?? '?'}`);
  }
  return lines.join('\n');
}

function age(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
