// Builds the web pages into web/dist/ (never committed): `node web/build.mjs` (or `make web`).
// esbuild bundles each page's script with its libraries (@cloudflare/blindrsa-ts, ethers,
// libsodium-wrappers) from the project's node_modules; the HTML and CSS are copied as they are.
// The API serves web/dist/ at / (the resident's page) and /results (the public results page).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, 'dist');
const started = Date.now();

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: { resident: join(here, 'src/resident.js'), results: join(here, 'src/results.js') },
  outdir: join(out, 'assets'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome109', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
  // libsodium's Emscripten loader mentions Node modules it never loads in a browser.
  external: ['fs', 'path', 'crypto', 'url', 'worker_threads'],
});

for (const name of readdirSync(join(here, 'pages'))) copyFileSync(join(here, 'pages', name), join(out, name));
copyFileSync(join(here, 'src/style.css'), join(out, 'assets/style.css'));
copyFileSync(join(here, 'src/favicon.svg'), join(out, 'assets/favicon.svg'));
writeFileSync(
  join(out, 'BUILD.json'),
  JSON.stringify({ builtAt: new Date().toISOString(), inputs: Object.keys(result.metafile.inputs).length }, null, 2),
);

const sizes = readdirSync(join(out, 'assets'))
  .filter((f) => f.endsWith('.js') || f.endsWith('.css'))
  .map((f) => `${f} ${(statSync(join(out, 'assets', f)).size / 1024).toFixed(0)} KiB`);
console.log(`web pages built in ${out} (${Date.now() - started} ms): ${sizes.join(', ')}`);
