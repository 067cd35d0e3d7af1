/**
 * `factorstream simulate`: writes a simulated market to a folder.
 *
 *   ticks/YYYY-MM-DD.<ext>    ticks of the day in time order (trades or snapshots by symbol)
 *   bars-1m/YYYY-MM-DD.<ext>  the 1-minute bars those trades make (labelled by their end, or their start with bars.label start)
 *   daily.csv                 date, symbol, prevClose, open, high, low, close, volume,
 *                             amount, suspended, isST, board, industry, logSize
 *   reference.csv             the reference data of every day (README "Reference data"):
 *                             reference price, ST, suspension, industry, float market
 *                             value, memberships of the synthetic indexes SIM-LARGE, SIM-MID
 *   latent.csv                date, symbol, short, long: the planted latents (for
 *                             checking what a model could reach; never model input)
 *   manifest.json             parameters, seed, universe and signal description
 */
import { mkdirSync, writeFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { BarLabel } from '../../market/sessions.js';
import { barsToTable, ticksToTable } from '../arrow-codec.js';
import { BarBatch, TickBatch, copyBarRow, copyTickRow } from '../events.js';
import type { FileFormat } from '../file-source.js';
import { FILE_EXTENSIONS, TableWriter } from '../table-writer.js';
import { INDUSTRIES, SIGNALS, type DailyRow, type MarketSimulator } from './market.js';
import type { ReferenceRecord } from '../../market/reference.js';
import { writeReferenceFile } from '../reference-codec.js';

export interface SimulateSummary {
  days: number;
  symbols: number;
  ticks: number;
  bars: number;
  files: string[];
}

/** Slots per written record batch: 30 minutes of the market. */
const FLUSH_SLOTS = 30;

export async function writeSimulation(
  sim: MarketSimulator,
  outDir: string,
  format: FileFormat,
  progress: (line: string) => void,
  barLabel: BarLabel = 'end',
): Promise<SimulateSummary> {
  mkdirSync(outDir, { recursive: true });
  const ext = FILE_EXTENSIONS[format];
  const summary: SimulateSummary = { days: 0, symbols: sim.universe.length, ticks: 0, bars: 0, files: [] };
  const daily = createWriteStream(join(outDir, 'daily.csv'));
  daily.write('date,symbol,prevClose,open,high,low,close,volume,amount,suspended,isST,board,industry,logSize\n');
  const latent = createWriteStream(join(outDir, 'latent.csv'));
  latent.write('date,symbol,short,long\n');
  const reference: ReferenceRecord[] = [];
  const ticks = new TickBatch(1 << 16);
  const bars = new BarBatch(1 << 12);
  for (let d = 0; d < sim.days.length; d++) {
    const iso = sim.isoDay(d);
    const tickFile = join(outDir, 'ticks', `${iso}${ext}`);
    const barFile = join(outDir, 'bars-1m', `${iso}${ext}`);
    const tw = new TableWriter(tickFile, format);
    const bw = new TableWriter(barFile, format);
    const gen = sim.generateDay(d);
    let rows: DailyRow[] | undefined;
    while (rows === undefined) {
      const next = gen.next();
      if (next.done === true) {
        rows = next.value;
        break;
      }
      const m = next.value;
      for (let i = 0; i < m.ticks.length; i++) copyTickRow(m.ticks, i, ticks);
      for (let i = 0; i < m.bars.length; i++) copyBarRow(m.bars, i, bars);
      if ((m.slot + 1) % FLUSH_SLOTS === 0) {
        tw.write(ticksToTable(ticks, sim.symbols));
        bw.write(barsToTable(bars, sim.symbols, 0, bars.length, barLabel));
        summary.ticks += ticks.length;
        summary.bars += bars.length;
        ticks.clear();
        bars.clear();
      }
    }
    await Promise.all([tw.close(), bw.close()]);
    summary.files.push(tickFile, barFile);
    reference.push(...sim.reference(d));
    for (const r of rows) {
      const u = sim.universe[r.symbol];
      daily.write(
        `${iso},${u.symbol},${r.prevClose},${r.open},${r.high},${r.low},${r.close},${r.volume},${r.amount.toFixed(2)},${r.suspended ? 1 : 0},${u.isST ? 1 : 0},${u.board},${INDUSTRIES[u.industry]},${u.logSize.toFixed(4)}\n`,
      );
      latent.write(`${iso},${u.symbol},${sim.latent('short', d, r.symbol).toFixed(6)},${sim.latent('long', d, r.symbol).toFixed(6)}\n`);
    }
    summary.days++;
    progress(`simulate: ${iso} written (${tw.rows.toLocaleString('en-US')} ticks, ${bw.rows.toLocaleString('en-US')} 1-minute bars)`);
  }
  daily.end();
  latent.end();
  await Promise.all([finished(daily), finished(latent)]);
  writeReferenceFile(join(outDir, 'reference.csv'), reference);
  const manifest = {
    generator: 'factorstream simulate',
    synthetic: true,
    params: sim.params,
    format,
    tradingDays: sim.days.map((_, d) => sim.isoDay(d)),
    signals: {
      ...SIGNALS,
      short: `latent 'short' shows on its day (buyer-initiated share, large-order direction, last-hour drift) and adds ${sim.params.shortSignal} x latent to the excess return of the next ${SIGNALS.horizon} trading days`,
      long: `latent 'long' shows in the first hour of its day (volume, Level-1 imbalance) and adds ${sim.params.longSignal} x latent to the excess return of the ${SIGNALS.horizon} trading days starting ${SIGNALS.longDelay} days later`,
    },
    universe: sim.universe,
  };
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  return summary;
}
