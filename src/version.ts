/** meshgate's version, as package.json says (src/ and dist/ sit at the same depth). */
import { createRequire } from 'node:module';

export const MESHGATE_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
