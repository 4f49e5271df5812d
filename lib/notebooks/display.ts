/**
 * What notebook cells need besides the library itself: the quick-settings switch set by the runner, and a
 * table as HTML for `tslab.display.html`. No logic lives in notebooks (style.md item 10); a cell calls these
 * and displays the result. This file does not import tslab (a devDependency): cells pass the strings and bytes
 * to `tslab.display.*` themselves.
 */
import { formatNumber } from '../util/table';

/** The environment variable the notebook runner sets: `1` = quick settings (CI), `0` = full settings. */
export const QUICK_ENV = 'OPDLAB_QUICK';

/** True when the notebook should use its quick settings (`OPDLAB_QUICK=1`, as `opdlab notebooks` sets by default). */
export function isQuick(): boolean {
  return process.env[QUICK_ENV] === '1';
}

/** `quickValue` under OPDLAB_QUICK=1, else `fullValue`: `const steps = quick(20, 2000)`. */
export function quick<T>(quickValue: T, fullValue: T): T {
  return isQuick() ? quickValue : fullValue;
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * An HTML table (text escaped; numbers with 4 significant digits and right-aligned, as in the terminal tables
 * of util/table.ts). Every row must have one cell per header.
 */
export function htmlTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[], caption?: string): string {
  rows.forEach((r, i) => {
    if (r.length !== headers.length) throw new Error(`htmlTable: row ${i} has ${r.length} cells, expected ${headers.length} (one per header)`);
  });
  const cell = (c: string | number) =>
    typeof c === 'number' ? `<td style="text-align:right">${escape(formatNumber(c))}</td>` : `<td style="text-align:left">${escape(c)}</td>`;
  return [
    '<table>',
    caption ? `<caption>${escape(caption)}</caption>` : '',
    `<thead><tr>${headers.map((h) => `<th>${escape(h)}</th>`).join('')}</tr></thead>`,
    `<tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody>`,
    '</table>',
  ].join('');
}
