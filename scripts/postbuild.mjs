// Makes the compiled tools executable, so the bin entries and a PATH of dist/tools work.
import { chmodSync, readdirSync } from 'node:fs';
const dir = new URL('../dist/tools/', import.meta.url);
for (const file of readdirSync(dir)) if (file.endsWith('.js')) chmodSync(new URL(file, dir), 0o755);
