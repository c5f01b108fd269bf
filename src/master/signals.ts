// Signals of the master: HUP deploys, USR2 upgrades the proxy workers, USR1 reopens the access
// log (logrotate), TERM/INT stop gracefully, a second TERM/INT kills.
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { Master } from './master.js';
import { UPGRADE_ERROR } from '../messages.js';

export function handleSignals(master: Master, log: Logger, onStopped: (code: number) => void): () => void {
  const l = log.child({ component: 'master' });
  let stopping = false;
  const hup = (): void => {
    l.info({ signal: 'SIGHUP' }, 'Reload requested');
    master.reload().catch((err) => l.error({ err: describe(err) }, 'Reload failed'));
  };
  const usr2 = (): void => {
    l.info({ signal: 'SIGUSR2' }, 'Upgrade requested');
    master.upgrade().catch((err) => l.error({ err: describe(err) }, UPGRADE_ERROR));
  };
  // A handler of its own also keeps Node from opening its inspector on SIGUSR1, as it would by default.
  const usr1 = (): void => {
    if (master.reopenAccessLog()) l.info({ signal: 'SIGUSR1', path: master.options.accessLog }, 'Reopening the access log');
    else l.info({ signal: 'SIGUSR1' }, 'No access log file to reopen');
  };
  const term = (signal: NodeJS.Signals): void => {
    if (stopping) {
      l.warn({ signal }, 'Second stop signal: killing everything now');
      master.kill();
      onStopped(130);
      return;
    }
    stopping = true;
    l.info({ signal }, 'Stop requested');
    master.stop().then(() => onStopped(0), () => onStopped(1));
  };
  process.on('SIGHUP', hup);
  process.on('SIGUSR2', usr2);
  process.on('SIGUSR1', usr1);
  process.on('SIGTERM', term);
  process.on('SIGINT', term);
  return () => {
    process.off('SIGHUP', hup);
    process.off('SIGUSR2', usr2);
    process.off('SIGUSR1', usr1);
    process.off('SIGTERM', term);
    process.off('SIGINT', term);
  };
}
