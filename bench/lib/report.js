// Turns the results object into the Markdown that is printed and saved as latest.md.

/** Nearest-rank percentile; null for an empty list. */
export function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const n0 = (v) => (v == null || Number.isNaN(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const n1 = (v) => (v == null || Number.isNaN(v) ? '–' : v.toFixed(1));
const ms = (v) => (v == null || Number.isNaN(v) ? '–' : v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(1)} ms`);

function overheadTable(o) {
  const out = [
    '| Target | req/s | vs direct | p50 | p99 | proxy CPU µs/req | each round | backend CPU µs/req | errors |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const r of o.rows) {
    if (r.skipped) { out.push(`| ${r.name} | skipped: ${r.skipped} | | | | | | | |`); continue; }
    const each = (r.rounds ?? []).map((x) => n1(r.direct ? null : x.proxyCpuUsPerReq)).join(' / ');
    const proxy = r.direct ? `(backend) ${n1(r.backendCpuUsPerReq)}` : n1(r.proxyCpuUsPerReq);
    const errs = r.errors + r.non2xx;
    out.push(`| ${r.name} | ${n0(r.rps)} | ${r.vsDirect == null ? '–' : `${(r.vsDirect * 100).toFixed(0)}%`} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${proxy} | ${r.direct ? '' : each} | ${n1(r.backendCpuUsPerReq)} | ${errs} |`);
  }
  return out;
}

const clientName = (c) => (c === 'no-retry' ? 'no-retry keep-alive' : 'autocannon');
const clientErrors = (r) => Object.entries(r.errors).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none';
const yesNo = (b) => (b ? 'yes' : '**no**');

function stormTable(s) {
  const out = [
    '| Client | HUPs | deployed | gens (first→last) | requests | failed | swap latency p50 | swap latency max | deploy p50 | client-reported errors |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of s.runs) {
    const errs = clientErrors(r);
    out.push(`| ${clientName(r.client)} | ${r.hups} | ${r.deployed} | ${r.firstGen}→${r.lastGen} (${r.gensSeen} answered) | ${n0(r.requests)} | ${n0(r.failed)} | ${ms(r.swapP50Ms)} | ${ms(r.swapMaxMs)} | ${ms(r.deployP50Ms)} | ${errs} |`);
  }
  return out;
}

function upgradeTable(u) {
  const out = [
    '| Client | USR2 | upgraded | requests | failed | upgrade p50 | upgrade max | handed over | backends unchanged | master unchanged | client-reported errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|',
  ];
  for (const r of u.runs) {
    out.push(`| ${clientName(r.client)} | ${r.upgrades} | ${r.upgraded} | ${n0(r.requests)} | ${n0(r.failed)} | ${ms(r.upgradeP50Ms)} | ${ms(r.upgradeMaxMs)} | ${n0(r.handedOver)} | ${yesNo(r.backendsUnchanged)} | ${yesNo(r.masterUnchanged)} | ${clientErrors(r)} |`);
  }
  return out;
}

/** Notes under a storm table: anything that went wrong, so a clean run stays short. */
function failureNotes(r, roundErrors, what) {
  const out = [];
  if (roundErrors.length) out.push('', `- ${r.client}: ${what} failures: ${roundErrors.join('; ')}`);
  if (r.client === 'no-retry' && r.failed) {
    out.push('', `- no-retry failures, exact error strings: ${Object.entries(r.errors).map(([k, v]) => `\`${k}\` × ${v}`).join(', ')}`);
  }
  return out;
}

function swapTargetLines(res) {
  const swap = res.storm?.runs?.find((r) => r.client === 'no-retry');
  const start = res.appStart;
  if (!swap || !start) return [];
  const over = swap.swapP50Ms - start.p50Ms;
  return [
    '## Swap latency against the app\'s own start',
    '',
    `The storm's app, started alone: p50 ${ms(start.p50Ms)} (max ${ms(start.maxMs)}, ${start.runs} runs) from spawn to its first answer.`,
    `HUP → first response from the new generation (no-retry client): p50 ${ms(swap.swapP50Ms)}, so hotproxy adds **${ms(over)}** (target ≤ 150 ms):`,
    'two health checks --health-interval apart (--health-rise 2) and the route switch.',
    '',
  ];
}

function readinessLines(res) {
  const r = res.readiness;
  if (!r) return [];
  const start = r.appStart;
  return [
    '## Readiness: polled or told',
    '',
    `HUP → first response from the new generation (app on the hotproxy/app helper; its own start alone: p50 ${ms(start?.p50Ms)}):`,
    '',
    '| readiness | HUPs | swap p50 | max | the app\'s own start (p50) | hotproxy adds (p50) | (max) | of it: HUP → process start | answer → client | listening → first request in the app | failed |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...r.modes.map((m) => `| ${m.mode} | ${m.hups} | ${ms(m.swapP50Ms)} | ${ms(m.swapMaxMs)} | ${ms(m.appP50Ms)} | ${ms(m.addsP50Ms)} | ${ms(m.addsMaxMs)} | ${ms(m.spawnP50Ms)} | ${ms(m.backP50Ms)} | ${ms(m.routeP50Ms)} | ${m.failed} |`),
    '',
    '"The app\'s own start" is what the new instance timed itself in the same run, under the same load:',
    'its process start to its first answer. The rest of the swap is hotproxy\'s (target for',
    '`--health notify`: ~15 ms). The last timing column bounds hotproxy\'s routing from above (READY=1',
    'heard, route sent, upstream connected) and includes the app\'s own loop finishing its start; in',
    'polling mode the first request is the health check. App clocks agree with the bench\'s to ~1 ms.',
    '',
  ];
}

function idleLines(res) {
  const d = res.idle;
  if (!d) return [];
  return [
    '## Idle keep-alive connections',
    '',
    '| connections | held as bare handles | worker RSS before | after | per connection | closed by the proxy | other client p50 / p99 |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    `| ${n0(d.connections)} | ${n0(d.heldBare ?? 0)} | ${n1(d.workerRssBeforeMiB)} MiB | ${n1(d.workerRssAfterMiB)} MiB | ${n1(d.perConnectionKiB)} KiB | ${d.closedByProxy} | ${ms(d.probeP50Ms)} / ${ms(d.probeP99Ms)} |`,
    '',
    d.connections < d.wanted ? `Only ${d.connections} of ${d.wanted}: the fd limit here is ${d.fdLimit} and both ends are on this machine.` : '',
    '',
  ];
}


/** One table per case, and hotproxy's CPU per request as a ratio of HAProxy's in the same mode. */
function casesSection(title, cases) {
  if (!cases?.length) return [];
  const out = ['', `## ${title}`];
  for (const c of cases) {
    const cpu = (name) => c.rows.find((r) => r.name === name && !r.skipped)?.proxyCpuUsPerReq;
    const ratios = ['http', 'tcp'].map((mode) => [mode, cpu(`hotproxy ${mode}`), cpu(`HAProxy ${mode}`)])
      .filter(([, h, a]) => h != null && a != null).map(([mode, h, a]) => `${mode} ${(h / a).toFixed(2)}×`);
    out.push('', `### ${c.name}`, '', `${c.connections} connections${c.uploadBytes ? `, POST of ${n0(c.uploadBytes)} bytes each` : `, GET ${c.path}`}, ` +
      `${c.rounds} round(s) of ${c.measureS}s; hotproxy CPU per request over HAProxy's: ${ratios.join(', ') || '–'}`, '', ...overheadTable(c));
  }
  return out;
}

/** How N proxy workers share connections and CPU (the kernel spreads accepts among them). */
function workersLines(w) {
  if (!w?.length) return [];
  const pct = (x) => `${(x * 100).toFixed(0)}%`;
  return ['', '## Proxy workers sharing the listener', '',
    'Keep-alive connections opened one request each, then counted per worker (`hotproxy status --json`); then wrk with 200 connections and each worker\'s share of the proxy CPU. On 2 cores this shows evenness, not scaling.', '',
    '| workers | connections per worker | CPU share under wrk -c200 | req/s |', '|---:|---|---|---:|',
    ...w.map((r) => `| ${r.workers} | ${r.connections.join(' / ')} (of ${n0(r.connectionsOpened)}) | ${r.cpuShare.map(pct).join(' / ')} | ${n0(r.rps)} |`)];
}

/** hotproxy's row beside HAProxy's for each case and certificate, as measured in the same run. */
function tlsLines(t, m) {
  if (!t) return [];
  const out = ['## TLS and HTTP/2 at the edge, against HAProxy with the same certificate', ''];
  if (t.skipped && !t.rows) return [...out, `Skipped: ${t.skipped}.`, ''];
  out.push(
    `h2load (nghttp2-client), TLS 1.3 with ${t.cipher} offered by the client so that both proxies run the same cipher; ` +
      `${t.measureS}s measured per case after a warm-up, ${t.rounds} interleaved round(s), medians shown; ` +
      'hotproxy `--listen-tls` (one proxy worker) and HAProxy `bind ... ssl crt ... alpn h2,http/1.1` (`nbthread 1`), the same key and self-signed certificate, backend bench/backend.js.',
    '',
    '| case | certificate | hotproxy /s | proxy CPU µs per unit (rounds) | HAProxy /s | proxy CPU µs per unit (rounds) | **CPU hotproxy ÷ HAProxy** | throughput hotproxy ÷ HAProxy | mean latency (hotproxy / HAProxy) | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  const each = (r) => (r.rounds.length > 1 ? ` (${r.rounds.map((x) => n1(x.proxyCpuUsPer)).join(' / ')})` : '');
  const pairs = [];
  for (const c of t.cases) for (const cert of [...new Set(t.rows.map((r) => r.cert))]) {
    const hot = t.rows.find((r) => r.case === c.id && r.cert === cert && r.proxy === 'hotproxy');
    const hap = t.rows.find((r) => r.case === c.id && r.cert === cert && r.proxy === 'HAProxy');
    if (hot || hap) pairs.push({ c, cert, hot, hap });
  }
  for (const { c, cert, hot, hap } of pairs) {
    const v = hot?.vsHaproxy;
    const errs = [hot, hap].map((r) => (r ? r.errors + r.non2xx : '–')).join(' / ');
    out.push(`| ${c.label}, µs per ${c.per} | ${cert} | ${n0(hot?.perSecond)} | ${hot ? `${n1(hot.proxyCpuUsPer)}${each(hot)}` : '–'} | ` +
      `${n0(hap?.perSecond)} | ${hap ? `${n1(hap.proxyCpuUsPer)}${each(hap)}` : '–'} | ${v ? `**${v.cpu.toFixed(2)}×**` : '–'} | ${v ? `${v.rate.toFixed(2)}×` : '–'} | ` +
      `${ms(hot?.meanMs)} / ${ms(hap?.meanMs)} | ${errs} |`);
  }
  const seen = [...new Set(t.rows.map((r) => `${r.tls} ${r.cipher}, ${r.tempKey}`))];
  out.push('', `Negotiated: ${seen.join('; ')}; ALPN as each case asks (h2 or http/1.1).`);
  for (const r of t.rows) if (r.problems.length) out.push('', `- ${r.target}, ${r.case}: **${r.problems.join('; ')}**`);
  for (const s of t.skipped ?? []) out.push('', `- ${s.target}${s.case ? `, ${s.case}` : ''}: skipped (${s.reason})`);
  out.push('',
    'Proxy CPU = utime+stime from /proc across the measured h2load runs ÷ handshakes or requests completed (hotproxy: master + proxy worker; HAProxy: its process). ' +
      'A handshake row includes its one small request (and, judging by its backend\'s CPU, HAProxy a new backend connection per client connection, where hotproxy reuses its pool); latency is h2load\'s mean time for request. ' +
      `h2load, proxy and backend share the same ${m.cores} cores, so rates are contention-bound; CPU per unit is the portable number.`,
    '');
  return out;
}

export function renderMarkdown(res) {
  const m = res.machine;
  const o = res.overhead;
  const lines = [
    `# hotproxy benchmark (${res.quick ? 'quick' : 'full'}${res.only ? `, only ${res.only.join(', ')}` : ''})`,
    '',
    `${m.date} · commit ${m.commit ?? 'unknown'} · ${m.cores} cores · ${m.cpuModel} · Node ${m.node} · ${m.platform}`,
  ];
  if (o) lines.push(
    '',
    '## Proxy overhead',
    '',
    `Load: ${o.tool === 'wrk' ? 'wrk -t1' : 'autocannon (in-process, pipelining 1)'}, ${o.connections} keep-alive connections, ` +
      `${o.warmS}s warm-up then ${o.measureS}s measured per target, ${o.rounds ?? 1} interleaved round(s), medians shown; one proxy worker/thread each; backend: bench/backend.js (12-byte body).`,
    '',
    ...overheadTable(o),
    '',
    'Proxy CPU µs/req = utime+stime of every proxy process (hotproxy: master + proxy workers; HAProxy/nginx: all their processes) during the measured window ÷ requests completed. ' +
      'The direct row shows the backend\'s own CPU instead. hotproxy reaches its backend over a Unix socket, HAProxy/nginx over TCP 127.0.0.1. ' +
      `Load generator, proxy and backend share the same ${m.cores} cores, so req/s is contention-bound; CPU per request is the portable number.`,
  );

  const s = res.storm;
  if (s) lines.push(
    '',
    '## Swap storm',
    '',
    `hotproxy http mode, backend test/fixtures/node-app.js, ${s.connections} keep-alive connections, ${s.hups} × SIGHUP about 1/s. ` +
      'Swap latency = SIGHUP → first response from the new generation\'s pid seen by the client; ' +
      'deploy = hotproxy\'s own `Deployed` ms (start + health checks + switch).',
    '',
    ...stormTable(s),
    '',
    'The no-retry client counts every request that did not return 200 (reset, refused, 5xx) and never resends. ' +
      'autocannon reconnects and resends on its own; it is shown for its `errors`/`timeouts`/`non2xx` view of the same storm.',
  );
  for (const r of s?.runs ?? []) {
    lines.push(...failureNotes(r, r.deployErrors, 'deploy'));
    if (r.swapsUnseen) lines.push('', `- ${r.client}: ${r.swapsUnseen} deploy(s) whose new pid never answered within 10 s`);
  }

  const u = res.upgradeStorm;
  if (u) {
    lines.push(
      '',
      '## Upgrade storm',
      '',
      `Same load and backend, hotproxy with ${u.proxyWorkers} proxy workers, ${u.upgrades} × SIGUSR2 about 1/s, each sent once the previous ` +
        '`Upgraded` line appeared. Upgrade = hotproxy\'s own `Upgraded` ms (new workers started and ready, old ones told to retire); ' +
        'handed over = keep-alive connections the retiring workers passed to the new ones (`Connections handed over`), all rounds. ' +
        'Backends unchanged: the `Ready` pids equal the active generation\'s pids in `hotproxy status` at the end, and no other backend pid answered. ' +
        'Master unchanged: the process the bench started is alive, is the pid `status` reports, and wrote every master log line.',
      '',
      ...upgradeTable(u),
    );
    for (const r of u.runs) {
      lines.push(...failureNotes(r, r.upgradeErrors, 'upgrade'));
      if (r.workersRetired < r.workersReplaced) lines.push('', `- ${r.client}: only ${r.workersRetired} of ${r.workersReplaced} replaced workers retired within 15 s`);
      if (r.notHandedOver) lines.push('', `- ${r.client}: ${r.notHandedOver} connection(s) not handed over (closed by the retiring worker)`);
      if (!r.backendsUnchanged) lines.push('', `- ${r.client}: backends at Ready ${r.readyBackends.join(',')}, at the end ${r.lastBackends.join(',')}, answered ${r.answeredBackends.join(',')}`);
      if (!r.statusOk) lines.push('', `- ${r.client}: \`hotproxy status\` did not answer at the end`);
    }
  }
  lines.push(...casesSection('Bodies: per byte, both ways', res.bodies), ...casesSection('Many connections', res.connections), ...workersLines(res.workers));
  lines.push('', ...swapTargetLines(res), ...readinessLines(res), ...idleLines(res), ...tlsLines(res.tls, m));
  return `${lines.join('\n')}\n`;
}
