// Once before every test file: compile lib/ to dist/, which the CLI tests and the hub test run as child
// processes (one tsc here, rather than one per file racing to rewrite dist/).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: 'pipe' });
}
