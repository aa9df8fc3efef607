// Writes docs/openapi.json from the route declarations (gateway/api.ts): `npm run openapi`. A test fails
// when the committed document is not what this writes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openApiDocument } from '../gateway/openapi.ts';

const path = join(import.meta.dirname, '..', 'docs', 'openapi.json');
writeFileSync(path, `${JSON.stringify(openApiDocument(), null, 2)}\n`);
console.log(`wrote ${path}`);
