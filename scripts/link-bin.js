// `npx hotproxy` in this repository looks in node_modules/.bin, and npm never links a
// package's own bin there: link it after each build, so the README's command works in a clone.
import { chmodSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
chmodSync(`${root}dist/cli.js`, 0o755);
mkdirSync(`${root}node_modules/.bin`, { recursive: true });
rmSync(`${root}node_modules/.bin/hotproxy`, { force: true });
symlinkSync('../../dist/cli.js', `${root}node_modules/.bin/hotproxy`);
