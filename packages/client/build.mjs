#!/usr/bin/env node
// Builds @hay/client from the host's compiled output (run the host's `npm run build` first):
// dist/index.js is the host's dist/src/api/client.js (its only run-time import is @trpc/client), and
// dist/host/ holds the host's declaration files, so AppRouter (and every input and output type of the API)
// type-checks in a project that has only this package. No host code runs in the client.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const hostDist = path.join(here, '..', '..', 'dist', 'src');
const out = path.join(here, 'dist');
if (!existsSync(path.join(hostDist, 'api', 'client.js'))) {
  process.stderr.write(
    '@hay/client: the host is not built; run `npm run build` at the repository root first\n',
  );
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(hostDist, path.join(out, 'host'), {
  recursive: true,
  filter: (src) => !/\.(js|js\.map|d\.ts\.map)$/.test(src) || src === hostDist,
});
const js = readFileSync(path.join(hostDist, 'api', 'client.js'), 'utf8').replace(
  /\n\/\/# sourceMappingURL=.*\n?$/,
  '\n',
);
if (/from '\.{1,2}\//.test(js)) {
  process.stderr.write(
    '@hay/client: client.js imports host modules at run time; it must import only @trpc/client\n',
  );
  process.exit(1);
}
writeFileSync(path.join(out, 'index.js'), js);
writeFileSync(
  path.join(out, 'index.d.ts'),
  "export { createHayClient, TRPCClientError, type HayClient, type HayClientOptions, type AppRouter } from './host/api/client.js';\n",
);
process.stdout.write('@hay/client: built dist/\n');
