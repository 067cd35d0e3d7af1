/**
 * Builds dist/ once before the tests, so that end-to-end tests run the CLI exactly as a
 * user does (node dist/cli.js) and never a stale build.
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
