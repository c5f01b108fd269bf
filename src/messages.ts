// The log messages tests look for, in one place: the source logs these constants and the tests
// import them, so a message cannot change under a test that waits for it or asserts that it
// never appears. A message with a variable part is a function of that part and nothing else.
// (test/unit/messages.test.ts: each is logged in src; tests name no message by its text.)

// master/master.ts: start-up, the listeners, proxy upgrades (USR2). Upgrading … Upgraded.
export const SYSTEMD_SOCKETS_UNUSED = 'Sockets passed by systemd that no --listen names are closed';
export const LISTENING = 'Listening';
export const READY = 'Ready';
export const UPGRADING = 'Upgrading';
export const UPGRADED = 'Upgraded';
export const UPGRADE_FAILED = 'Upgrade failed; the current proxy workers keep serving';

// master/pause.ts: `hotproxy pause` … `resume`. Pausing … Paused (nothing in flight) … Resumed, or Pause expired at --max-pause.
export const PAUSING = 'Pausing: new requests are held';
export const PAUSED = 'Paused: nothing in flight';
export const RESUMED = 'Resumed: held requests released in order';
export const PAUSE_EXPIRED = 'Pause expired (--max-pause): held requests got 503, new ones flow again';

// master/signals.ts: an upgrade that threw rather than failed (the master's line is UPGRADE_FAILED).
export const UPGRADE_ERROR = 'Upgrade failed';

// master/deployer.ts: one deploy (HUP) of a generation, then the drain of the one before. Deploying … Deployed, Draining … Drained.
export const DEPLOYING = 'Deploying';
export const DEPLOYED = 'Deployed';
export const DEPLOY_FAILED = 'Deploy failed; the current generation keeps serving';
export const DEPLOY_FAILED_NOTHING_SERVING = 'Deploy failed; no generation is serving';
export const DRAINING = 'Draining';
export const DRAIN_DEADLINE = 'Drain deadline passed; open requests were cut';
export const DRAINED = 'Drained';
/** --keep-previous: the replaced generation runs on, unrouted. Then a rollback: Rolled back. */
export const KEPT_WARM = 'Kept warm for a rollback';
export const ROLLED_BACK = 'Rolled back';
/** reload --canary: Canary started … Promoted, or Canary ended (a rollback). */
export const CANARY_STARTED = 'Canary started';
export const PROMOTED = 'Promoted';
export const CANARY_ENDED = 'Canary ended';
export const ROLLBACK_NOT_WARM = 'Warm generation failed its check; deploying the previous release instead';
/** A reload with a command while a deploy runs: it runs next, unless a later one overtakes it. */
export const RELOAD_QUEUED = 'Reload queued behind the deploy in progress';
/** `hotproxy reload -- <command>` with a command that cannot run: no deploy starts. */
export const RELOAD_REFUSED = 'Reload refused; the current generation keeps serving';

// master/generation.ts: the backends of a generation, and restarts of the active one.
export const BACKEND_STARTED = 'Backend started';
/** `how` is describeExit()'s: 'was killed by SIGKILL', 'exited with code 5', … */
export const BACKEND_EXITED = (how: string): string => `Backend ${how}; restarting`;
export const BACKEND_RESTART_FAILED = 'Backend restart failed';
export const BACKEND_RESTARTED = 'Backend restarted';
/** An instance out of rotation for --unhealthy-restart: Replacing … Backend replaced. */
export const REPLACING_BACKEND = 'Replacing unhealthy backend';
export const BACKEND_REPLACED = 'Backend replaced';

// health/monitor.ts: continuous checks of the serving generation's instances.
export const BACKEND_OUT = 'Backend out of rotation';
export const BACKEND_BACK = 'Backend back in rotation';

// backend/instance.ts: a STATUS= line a backend sent on its NOTIFY_SOCKET.
export const BACKEND_STATUS = 'Backend status';

// backend/instance.ts: a backend stopped the hard way.
export const BACKEND_SIGKILLED = (timeoutMs: number): string => `Backend did not exit within ${timeoutMs} ms of SIGTERM; sent SIGKILL`;

// master/proxy-workers.ts: the proxy worker processes, as the master sees them.
export const PROXY_WORKER_READY = 'Proxy worker ready';
export const PROXY_WORKER_EXITED = 'Proxy worker exited; restarting';
/** A worker replaced by an upgrade is gone (the bench waits for it). */
export const PROXY_WORKER_RETIRED = 'Proxy worker retired';

// proxy/raw/engine.ts, proxy/node/engine.ts: a retiring worker moving its open connections to its successor.
export const CONNECTIONS_HANDED_OVER = 'Connections handed over';
/** raw engine: idle connections were shed and the worker gave the heap they used back. */
export const MEMORY_RELEASED = 'Memory released';

// proxy/worker.ts: what this Node has of the internals hotproxy uses, once per worker.
export const INTERNALS_PROBED = 'Node internals probed';

// proxy/worker.ts: logged once per worker for each Node internal it goes without (src/internals).
export const NODE_INTERNAL_MISSING = 'Node internal missing; using a fallback';

// proxy/access-log.ts: the access log file of a proxy worker (--access-log), and its reopening on SIGUSR1.
export const ACCESS_LOG_REOPENED = 'Access log reopened';
export const ACCESS_LOG_REOPEN_FAILED = 'Access log could not be reopened; writing on to the old file';
export const ACCESS_LOG_WRITE_FAILED = 'Access log write failed; its lines are dropped until writing works again';

// tls/store.ts: the --tls-cert/--tls-key files, watched; a changed pair is checked before it serves.
export const CERT_LOADED = 'Certificates loaded';
export const CERT_RELOADED = 'Certificate reloaded';
export const CERT_RELOAD_REFUSED = 'Certificate reload refused; the previous one serves on';

// acme/: certificates by ACME, obtained at start and renewed at two thirds of their lifetime.
export const ACME_ORDERING = 'Ordering certificate';
export const ACME_OBTAINED = 'Certificate obtained';
export const ACME_CACHED = 'Certificate from the ACME cache';
export const ACME_FAILED = 'Certificate order failed; retrying';
export const ACME_CACHE_WRITE_FAILED = 'Certificate obtained but not cached; the next start orders again';

// proxy/tls/: TLS termination in a proxy worker.
export const H2_FLOOD = 'HTTP/2 session closed: too many streams reset by the client';
export const TLS_FINISHED = 'TLS connections finished';
