/**
 * The status page as a person sees it: the embedded default runs with its HTTP port, and
 * headless Chromium (Debian's `chromium`) loads `/`, runs the page's script against the
 * live /status.json, and the rendered page shows the current bar, throughput, both demo
 * models with their versions and engine, coverage, latency, the realised 1-day IC once a
 * day has passed, the top and bottom scores, and the last hour's throughput and latency
 * charts. Skipped, loudly, without Chromium; CI
 * installs it and must run this.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const CHROMIUM = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0);
if (CHROMIUM === undefined) {
  process.stderr.write('\n*** status page browser test SKIPPED: no chromium on this machine (apt-get install chromium) ***\n\n');
  if (process.env.CI === 'true') throw new Error('CI must run the status page browser test: install Debian\'s chromium');
}

/** Text of the page's elements, tags stripped. */
function text(html: string): string {
  return html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<\/?span[^>]*>/g, '').replace(/<[^>]+>/g, ' ').replace(/&amp;/g, '&').replace(/\s+/g, ' ');
}

describe.skipIf(CHROMIUM === undefined)('status page in headless Chromium', () => {
  it('shows the bar, throughput, models, coverage, latency, live IC and top/bottom scores of the running daemon', async () => {
    // Five days at 1,200x: the page is read after the second, and the daemon must still be serving it then however slowly Chromium starts.
    const run = spawn(process.execPath, ['dist/cli.js', 'run', '--days', '5', '--speed', '1200x'], {
      env: { ...process.env, FACTORSTREAM_DAEMON_HTTP_PORT: '0', FACTORSTREAM_DAEMON_ARCHIVE_DIR: '', FACTORSTREAM_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let stdout = '';
      let stderr = '';
      run.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      run.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      // The second day's 15:00 close: the first day's 1-day IC is then known.
      const deadline = Date.now() + 120_000;
      while ((stdout.match(/ 15:00 10m close/g)?.length ?? 0) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      const port = /"port":(\d+)[^\n]*http listening/.exec(stderr)?.[1];
      expect(port, stderr).toBeDefined();
      expect(stdout.match(/ 15:00 10m close/g)?.length ?? 0).toBeGreaterThanOrEqual(2);

      const read = (): { html: string; seen: string } => {
        const dom = spawnSync(CHROMIUM as string, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--virtual-time-budget=7000', '--dump-dom', `http://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: 60_000 });
        expect(dom.status, dom.stderr).toBe(0);
        return { html: dom.stdout, seen: text(dom.stdout) };
      };
      // The latency chart covers the last hour of (simulated) time: right after the overnight
      // gap or the lunch break it has a single close and says so; a read later in the session has more.
      let { html, seen } = read();
      for (let i = 0; i < 8 && /bar close → publish: not enough data yet/.test(seen); i++) {
        await new Promise((r) => setTimeout(r, 1_500));
        ({ html, seen } = read());
      }
      expect(html).toMatch(/<title>factorstream status<\/title>/);
      expect(seen).not.toMatch(/not updating/);
      expect(seen).toMatch(/Current bar 10m 2026-\d\d-\d\d \d\d:\d\d · 30m 2026-\d\d-\d\d \d\d:\d\d/);
      expect(seen).toMatch(/Throughput [\d,]+ \/s/);
      expect(seen).toMatch(/Events ingested [\d,]+/);
      for (const model of ['demo-10m', 'demo-30m']) {
        const version = (JSON.parse(readFileSync(`models/${model}/meta.json`, 'utf8')) as { version: string }).version;
        // model, version, freq, engine, role, last bar, scored, coverage, inference, latency, live IC 1d
        const row = new RegExp(`${model} ${version} (10|30)m onnx/cpu live 2026-\\d\\d-\\d\\d \\d\\d:\\d\\d [\\d,]+ \\d+\\.\\d% \\d+ ms (\\d+ ms|\\d+\\.\\d\\d s) / (\\d+ ms|\\d+\\.\\d\\d s) [+-]\\d\\.\\d{3} \\([+-]\\d\\.\\d{3}\\)`);
        expect(seen).toMatch(row);
        expect(seen).toMatch(new RegExp(`${model}: top and bottom scores at 2026-\\d\\d-\\d\\d \\d\\d:\\d\\d`));
      }
      // The last hour's charts: throughput, and each model's close → publish latency.
      expect(seen).toMatch(/events ingested \/s · max [\d,]+ \/s · 2026-\d\d-\d\d \d\d:\d\d–2026-\d\d-\d\d \d\d:\d\d/);
      expect(seen).toMatch(/bar close → publish · max (\d+ ms|\d+\.\d\d s) · .* · demo-10m · demo-30m/);
      expect(html.replace(/<script[\s\S]*?<\/script>/g, '').match(/<polyline /g)?.length ?? 0).toBe(3);
      // Five top and five bottom symbols per model, each with its score and z.
      const symbolRows = seen.match(/\d{6}\.(SH|SZ|BJ) -?\d\.\d{4} [+-]\d\.\d{3}/g) ?? [];
      expect(symbolRows.length).toBe(20);
    } finally {
      run.kill('SIGTERM');
    }
  }, 180_000);
});
