// Micro benchmark (a command, not a test): signed mails per second through the stage's work without broker and
// database: verification only (verifyMessage, chain cached, revocation from the CA's CRL at hand), and verification
// plus the report message the agency receives (the PDF by pdf-lib, the ETSI XML, the multipart/mixed around the
// original: what verify-envelope.ts does between reading and storing the blob).
//   node services/signature-verify/bench/report.ts [--seconds 3] [--sizes 10k,100k]
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createMessageVerifier, summaryHeader, type VerificationResult } from '@smgw/signature-verify';
import { buildValidationReport } from '@smgw/trusted-list';
import { buildReportMessage } from '../src/report-message.ts';
import { reportInput } from '../src/report-model.ts';
import { renderReportPdf } from '../src/report-pdf.ts';
import { TestPki } from '../test/test-pki.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '3' }, sizes: { type: 'string', default: '10k,100k' } },
});
const seconds = Number(values.seconds);
const sizes = (values.sizes as string).split(',').map((s) => Number.parseInt(s, 10) * (s.endsWith('k') ? 1024 : 1));

async function rate(work: () => Promise<unknown>, budgetSeconds: number): Promise<number> {
  let count = 0;
  const start = performance.now();
  const end = start + budgetSeconds * 1000;
  while (performance.now() < end) {
    await work();
    count++;
  }
  return count / ((performance.now() - start) / 1000);
}

/** Alternating rounds, best of each: the machine is shared. */
async function rates(contenders: ReadonlyArray<() => Promise<unknown>>, budgetSeconds: number) {
  const best = contenders.map(() => 0);
  for (const work of contenders) for (let i = 0; i < 10; i++) await work();
  for (let round = 0; round < 5; round++) {
    for (const [index, work] of contenders.entries()) {
      best[index] = Math.max(best[index] as number, await rate(work, budgetSeconds / 5));
    }
  }
  return best;
}

/** The report message for a result, as verify-envelope.ts builds it. */
async function reportMessage(original: Buffer, result: VerificationResult): Promise<Buffer> {
  const summary = summaryHeader(result);
  return buildReportMessage(original, {
    summary,
    pdf: await renderReportPdf(result, {
      messageId: 'bench',
      hostname: 'gateway.bench',
      originalSha256: createHash('sha256').update(original).digest('hex'),
      summary,
      trustedLists: [],
    }),
    xml: buildValidationReport(reportInput(result, [])),
  });
}

const pki = await TestPki.create('Bench Report CA');
try {
  const signer = await pki.signer('sender', 'sender@partner.example', 'http://crl.invalid/ca.crl');
  const crls = [await pki.crl()];
  const clock = new Date(Date.now() + 60_000);
  const verifier = createMessageVerifier({ trustAnchors: [{ certificate: pki.ca.der }], now: () => clock, crls });
  const rows: string[][] = [];
  for (const size of sizes) {
    const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.\r\n';
    const text = line.repeat(Math.ceil(size / line.length)).slice(0, size);
    const entity = Buffer.from(`Content-Type: text/plain; charset=utf-8\r\n\r\n${text}`);
    const mail = await pki.signedMail(
      ['MIME-Version: 1.0', 'From: Sender <sender@partner.example>', 'To: poststelle@behoerde.example'],
      entity,
      signer,
    );
    const first = await verifier.verifyMessage(mail);
    if (first.overall.indication !== 'TOTAL_PASSED') throw new Error(summaryHeader(first));
    const [verifyOnly, withReport] = (await rates(
      [() => verifier.verifyMessage(mail), async () => reportMessage(mail, await verifier.verifyMessage(mail))],
      seconds,
    )) as [number, number];
    const reportBytes = (await reportMessage(mail, first)).length;
    rows.push([
      `${Math.round(size / 1024)} KB`,
      `${Math.round(verifyOnly)}/s`,
      `${Math.round(withReport)}/s (${(withReport / verifyOnly).toFixed(2)}×)`,
      `${Math.round(reportBytes / 1024)} KB`,
    ]);
  }
  console.log('| size | verifyMessage (chain cached) | + report PDF, XML and message | report message size |');
  console.log('| ---- | ---------------------------- | ----------------------------- | ------------------- |');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
} finally {
  await pki.remove();
}
