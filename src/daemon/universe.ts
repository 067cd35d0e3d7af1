/** An optional fixed universe: one symbol per line ('#' comments); other symbols are E_UNKNOWN_SYMBOL. */
import { readFileSync } from 'node:fs';
import { isValidSymbol } from '../market/symbols.js';

export function readUniverse(path: string): string[] | undefined {
  if (path === '') return undefined;
  const symbols = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
  const bad = symbols.filter((s) => !isValidSymbol(s));
  if (bad.length > 0) throw new Error(`universe file ${path}: not symbols: ${bad.slice(0, 5).join(', ')}`);
  return symbols;
}
