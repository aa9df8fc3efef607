import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MerchantId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { MerchantReports } from '../gateway/merchant-reports.ts';
import { buildWebApps, WEB_APPS } from '../gateway/web.ts';
import { openStore } from '../persistence/store.ts';
import { launchBrowser, newContext } from '../test/browser.ts';
import { median, random } from './measure.ts';
import { startPaycode } from './pos-server.ts';

/**
 * What the web apps cost: (1) what a browser downloads for each page (production bundles, gzipped as
 * served); (2) how long each page takes in headless Chromium from navigation until it is usable (its
 * first control or heading is visible), warm, median of `loads`; (3) what a merchant report costs the
 * main thread when the journal holds `postings` postings of `merchants` merchants: the report's time,
 * entries read per microsecond and the longest event-loop delay while it ran.
 */
export interface WebBenchOptions {
  loads: number;
  postings: number;
  merchants: number;
}

export async function runWebBench(options: WebBenchOptions): Promise<string[]> {
  const lines: string[] = [];
  const assets = await buildWebApps(WEB_APPS, true);
  lines.push('page weight (production bundles: html + js + css)');
  for (const app of WEB_APPS) {
    let raw = 0;
    let gzipped = 0;
    for (const [path, asset] of assets) {
      if (!path.startsWith(`${app.mount}/`) || !/(\/|\.js|\.css)$/.test(path) || path.endsWith('/sw.js'))
        continue;
      raw += asset.body.length;
      gzipped += asset.gzipped?.length ?? asset.body.length;
    }
    lines.push(
      `  ${app.mount.padEnd(12)} ${(raw / 1024).toFixed(1)} KiB, ${(gzipped / 1024).toFixed(1)} KiB gzipped`,
    );
  }

  lines.push(
    `page load in headless Chromium until usable (median of ${options.loads}, warm, loopback, development bundles)`,
  );
  const server = await startPaycode({ shards: 1 });
  const browser = await launchBrowser();
  try {
    const ready: Record<string, string> = {
      '/wallet/': 'button:has-text("Send code")',
      '/pos/': 'button:has-text("Activate")',
      '/merchant/': 'button:has-text("Sign in")',
      '/dev/inbox/': 'input',
    };
    for (const [path, selector] of Object.entries(ready)) {
      const context = await newContext(browser, path === '/wallet/' ? 'phone' : 'desktop');
      const page = await context.newPage();
      const times: number[] = [];
      for (let load = 0; load <= options.loads; load++) {
        const startedAt = performance.now();
        await page.goto(`${server.url}${path}`);
        await page.locator(selector).first().waitFor();
        if (load > 0) times.push(performance.now() - startedAt);
      }
      lines.push(`  ${path.padEnd(12)} ${median(times).toFixed(0)} ms`);
      await context.close();
    }
  } finally {
    await browser.close();
    await server.stop();
  }

  lines.push(
    `merchant reports over ${options.postings.toLocaleString('en-US')} postings of ${options.merchants} merchants (pages cached)`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'paycode-bench-web-'));
  const store = openStore(dir);
  try {
    const next = random(7);
    const nowMs = Date.now();
    const spanMs = 6 * 86_400_000;
    const batch = 10_000;
    for (let written = 0; written < options.postings; written += batch) {
      await store.root.transaction(() => {
        for (let i = written; i < Math.min(options.postings, written + batch); i++) {
          const merchantId = `mc_bench${Math.floor(next() * options.merchants)}`;
          const atMs = nowMs - spanMs + Math.floor((i / options.postings) * spanMs);
          store.journal.put([atMs, 1, i], {
            atMs,
            kind: 'redeem',
            consumerId: `cs_bench${i % 5000}` as never,
            merchantId: merchantId as MerchantId,
            ref: `au_bench${i}`,
            legs: [
              { account: `card:cd_bench${i % 5000}`, cents: -500 },
              { account: `merchant:${merchantId}:payable`, cents: 500 },
            ],
          });
        }
      });
    }
    const limits = { ...LIMITS, reportScansPerMerchantMax: 1, reportScansMax: 4 };
    const cutoff = { timeZone: 'UTC', time: '00:00' };
    const reports = new MerchantReports(store, limits, cutoff, () => nowMs, randomBytes(32));
    const measure = async (label: string, run: () => Promise<unknown>) => {
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const startedAt = performance.now();
      await run();
      const ms = performance.now() - startedAt;
      delay.disable();
      lines.push(
        `  ${label.padEnd(44)} ${ms.toFixed(0)} ms, longest event-loop delay ${(delay.max / 1e6).toFixed(1)} ms`,
      );
    };
    const merchant = 'mc_bench0' as MerchantId;
    await measure('transactions, 50 newest of one merchant', () =>
      reports.transactions(merchant, { limit: 50, before: null, beforeMs: null }),
    );
    await measure('activity, 7 days, nothing settled', () => reports.activity(merchant, 7));
    const scanned = Math.min(options.postings, limits.reportScanEntriesMax);
    const full = performance.now();
    await reports.activity(merchant, 7);
    lines.push(
      `  about ${(((performance.now() - full) * 1000) / scanned).toFixed(2)} µs per journal entry read (activity, ${scanned.toLocaleString('en-US')} entries)`,
    );
  } finally {
    await store.root.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}
