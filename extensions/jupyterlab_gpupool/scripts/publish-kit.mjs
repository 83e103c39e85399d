// Copies the compiled UI kit (lib/kit/*.js, style/kit.css) to the pool service's admin page
// (hub_ext/service/pages/static/kit/), so both UIs run the same code.
// Skipped when the service's sources are not beside this package (a wheel built from an sdist).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const from = join(here, '..', 'lib', 'kit');
const pages = join(here, '..', '..', '..', 'hub_ext', 'service', 'pages');
if (!existsSync(pages)) {
  console.log('publish-kit: no hub_ext/service/pages beside this package; skipped');
  process.exit(0);
}
const to = join(pages, 'static', 'kit');
mkdirSync(to, { recursive: true });
for (const name of readdirSync(from).filter(n => n.endsWith('.js'))) {
  const text = readFileSync(join(from, name), 'utf8').replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
  writeFileSync(join(to, name), text);
}
writeFileSync(join(to, 'kit.css'), readFileSync(join(here, '..', 'style', 'kit.css'), 'utf8'));
console.log(`publish-kit: copied the UI kit to ${to}`);
