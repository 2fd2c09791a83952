// Fails when the committed build (src/attendance_live/web/dist) is not what the
// sources build to: run `npm --prefix web run build` and commit the result.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const committed = path.resolve(web, '..', 'src', 'attendance_live', 'web', 'dist');
const fresh = mkdtempSync(path.join(os.tmpdir(), 'attendance-live-dist-'));

function files(dir, prefix = '') {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full, `${prefix}${name}/`) : [`${prefix}${name}`];
  }).sort();
}

try {
  execFileSync(process.execPath, [path.join(web, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--outDir', fresh, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: web,
    stdio: 'inherit',
  });
  const want = files(fresh);
  const have = files(committed);
  const problems = [];
  for (const name of want) {
    if (!have.includes(name)) problems.push(`missing: ${name}`);
    else if (!readFileSync(path.join(fresh, name)).equals(readFileSync(path.join(committed, name)))) problems.push(`differs: ${name}`);
  }
  for (const name of have) if (!want.includes(name)) problems.push(`stale: ${name}`);
  if (problems.length) {
    console.error(`The committed dashboard build is out of date:\n  ${problems.join('\n  ')}\nRun \`npm --prefix web run build\` and commit src/attendance_live/web/dist.`);
    process.exitCode = 1;
  } else {
    console.log(`The committed dashboard build matches the sources (${want.length} files).`);
  }
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
