// What /proc says about a process, read by the same code the bench measures with.
export { cpuMicros, rssKiB } from '../../harness/procs.js';
