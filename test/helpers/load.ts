// The no-retry keep-alive client the bench shares (harness/load.js).
export { Load } from '../../harness/load.js';
export type { LoadResult } from '../../harness/load.js';
