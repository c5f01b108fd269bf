// Polling and process liveness, from the harness the bench shares.
export { waitFor } from '../../harness/wait.js';
export { isAlive } from '../../harness/procs.js';
