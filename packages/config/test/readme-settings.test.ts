// The README's settings table is where operators and outside tests learn a setting's name and default (SPEC.md
// "Settings"): every setting in settings.ts must have its row there, with the default the code uses.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { settings } from '../src/index.ts';

const README = new URL('../../../README.md', import.meta.url);

interface ReadmeRow {
  names: string[];
  defaultCell: string;
}

/** The rows of the table under "## Settings": each row's variable names and its default cell as written. */
function readmeSettingsRows(markdown: string): ReadmeRow[] {
  const section = markdown.split(/^## Settings$/m)[1]?.split(/^## /m)[0] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      const [variable = '', defaultCell = ''] = line.split('|').slice(1, 3);
      return { names: [...variable.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1] ?? ''), defaultCell };
    });
}

/** The default a cell states, when it starts with one literal value (not "unset: …", "generated …", a list with …). */
function statedDefault(cell: string): string | undefined {
  const literal = /^\s*`([^`]*)`/.exec(cell)?.[1];
  return literal === undefined || literal.includes('…') ? undefined : literal;
}

describe("README's settings table", () => {
  const rows = readmeSettingsRows(readFileSync(README, 'utf8'));

  it("has a row for every setting of settings.ts and for SPEC.md's SMGW_DEV_CLOCK", () => {
    const documented = new Set(rows.flatMap((row) => row.names));
    const names = [...Object.values(settings).map((s) => s.env), 'SMGW_DEV_CLOCK'];
    assert.deepEqual(
      names.filter((name) => !documented.has(name)),
      [],
    );
  });

  it('states the default the code uses', () => {
    const wrong: string[] = [];
    let compared = 0;
    for (const s of Object.values(settings)) {
      const row = rows.find((r) => r.names.includes(s.env));
      const stated = row && statedDefault(row.defaultCell);
      if (stated === undefined || s.fallback === undefined) continue;
      compared += 1;
      if (stated !== s.fallback) wrong.push(`${s.env}: README ${stated}, code ${s.fallback}`);
    }
    assert.deepEqual(wrong, []);
    assert.ok(compared > 50, `only ${compared} defaults compared: the table was not read`);
  });
});
