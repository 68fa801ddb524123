#!/usr/bin/env node
// The compiled CLI (built by `npm ci` through the prepare script). In a checkout without
// dist/, run `npm run build` first.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(compiled)) {
  process.stderr.write('meshgate: dist/ is missing; run `npm run build` (or `npm ci`) in the meshgate checkout first\n');
  process.exit(2);
}
const { main } = await import(compiled);
main();
