// Programmatic API. The library never exits the process; the CLI does.
import { createLogger, type Logger } from './log.js';
import { resolveOptions, type OptionsInput } from './options.js';
import { Master } from './master/master.js';

export { Master } from './master/master.js';
export type { DeployResult } from './master/deployer.js';
export type { PauseResult, ResumeResult } from './master/pause.js';
export type { Release } from './backend/command.js';
export { resolveOptions, defaults, parseDuration, type Options, type OptionsInput, type BackendKind } from './options.js';
export { parseListen, formatAddress, formatListen, type Address, type ListenSpec, type Inherited } from './address.js';
export { HotproxyError, UsageError, ListenError, PidFileError, DeployError, ControlError, type ErrorCode } from './errors.js';
export { createLogger, type Logger } from './log.js';

/** Starts a hotproxy (listeners, proxy workers, first generation) and resolves once it serves. */
export async function start(input: OptionsInput, log?: Logger): Promise<Master> {
  const options = resolveOptions(input);
  const master = new Master(options, log ?? createLogger({ level: options.logLevel, format: options.logFormat }));
  await master.start();
  return master;
}
