// The node engine's connects to backends, for its http.Agent (whose createConnection may
// answer through a callback): one refused because the backend's accept queue was full is
// made again to the same instance a moment later, as the raw engine and tcp mode do. The
// request waits for its socket meanwhile, its body still unread, so a POST is as safe as a GET.
import net from 'node:net';
import { BACKLOG_RETRIES, backlogDelayMs, isBacklogFull } from '../failure.js';

export function connectWaitingForBacklog(opts: net.NetConnectOpts, cb: (err: Error | null, socket?: net.Socket) => void): undefined {
  let refused = 0;
  const attempt = (): void => {
    const s = net.createConnection(opts);
    const onError = (err: Error): void => {
      if (isBacklogFull(err) && ++refused <= BACKLOG_RETRIES) { setTimeout(attempt, backlogDelayMs(refused)); return; }
      cb(err);
    };
    s.once('error', onError);
    s.once('connect', () => { s.off('error', onError); cb(null, s); });
  };
  attempt();
  return undefined;
}
