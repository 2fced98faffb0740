// The ETSI TS 119 102-2 schema check the tests share: xmllint against testdata/etsi-xsd, offline (its catalog maps
// the imported schemas to local files).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const XSD_DIR = join(import.meta.dirname, '../../../testdata/etsi-xsd');

/** Asserts that `xml` is valid against the schema; `dir` is where the file for xmllint is written. */
export async function assertSchemaValid(xml: Buffer | string, dir: string): Promise<void> {
  const file = join(dir, `report-${Math.random().toString(36).slice(2)}.xml`);
  await writeFile(file, xml);
  const run = spawnSync('xmllint', ['--nonet', '--noout', '--schema', join(XSD_DIR, '1910202xmlSchema.xsd'), file], {
    env: { ...process.env, XML_CATALOG_FILES: join(XSD_DIR, 'catalog.xml') },
    encoding: 'utf8',
  });
  assert.ok(!run.error, `xmllint could not run (${run.error?.message}): install libxml2-utils`);
  assert.equal(run.status, 0, `the report is not schema-valid:\n${run.stderr}`);
}
