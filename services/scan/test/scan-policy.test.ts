import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyFinding, DEFAULT_SCAN_POLICY, parseScanPolicy, quarantines } from '../src/scan-policy.ts';

describe('classifying clamd findings', () => {
  const cases: [string, string, string][] = [
    ['Eicar-Test-Signature', 'infected', 'malware'],
    ['Win.Trojan.Agent-123', 'infected', 'malware'],
    ['ClamAV-Test-File.UNOFFICIAL', 'infected', 'malware'],
    ['Heuristics.Encrypted.Zip', 'suspicious', 'encrypted'],
    ['Heuristics.Encrypted.PDF', 'suspicious', 'encrypted'],
    ['Heuristics.Limits.Exceeded.MaxRecursion', 'suspicious', 'limits'],
    ['Heuristics.Limits.Exceeded.MaxFileSize', 'suspicious', 'limits'],
    ['Smgw.Limits.Exceeded.StreamMaxLength', 'suspicious', 'limits'],
    ['Heuristics.Broken.Executable', 'suspicious', 'broken'],
    ['Heuristics.Phishing.Email.SpoofedDomain', 'suspicious', 'heuristic'],
    ['Smgw.Broken.SignedData', 'suspicious', 'signed-data'],
    ['Smgw.Limits.Exceeded.SignedData.MaxRecursion', 'suspicious', 'signed-data'],
  ];
  for (const [signature, verdict, category] of cases) {
    it(`calls ${signature} ${verdict} (${category})`, () => {
      assert.deepEqual(classifyFinding(signature), { verdict, category });
    });
  }
});

describe('the scan policy', () => {
  it('lets no policy pass SignedData whose content could not be scanned', () => {
    const everything = parseScanPolicy('inbound:broken,inbound:limits,inbound:encrypted,inbound:heuristic');
    assert.ok(quarantines(classifyFinding('Smgw.Broken.SignedData'), 'inbound', everything));
    assert.ok(quarantines(classifyFinding('Smgw.Limits.Exceeded.SignedData.MaxSize'), 'inbound', everything));
    assert.equal(quarantines(classifyFinding('Heuristics.Broken.Executable'), 'inbound', everything), false);
  });

  it('quarantines everything suspicious by default, in every direction', () => {
    for (const direction of ['inbound', 'outbound', 'internal', 'portal'] as const) {
      assert.ok(quarantines(classifyFinding('Heuristics.Encrypted.Zip'), direction, DEFAULT_SCAN_POLICY));
      assert.ok(quarantines(classifyFinding('Heuristics.Limits.Exceeded.MaxScanSize'), direction, DEFAULT_SCAN_POLICY));
    }
  });

  it('lets a listed category pass only in its direction', () => {
    const policy = parseScanPolicy('internal:encrypted, portal:limits');
    assert.equal(quarantines(classifyFinding('Heuristics.Encrypted.Zip'), 'internal', policy), false);
    assert.equal(quarantines(classifyFinding('Heuristics.Encrypted.Zip'), 'inbound', policy), true);
    assert.equal(quarantines(classifyFinding('Heuristics.Limits.Exceeded.MaxFiles'), 'portal', policy), false);
  });

  it('never lets malware pass and refuses to be configured so', () => {
    const policy = parseScanPolicy('internal:encrypted,internal:limits,internal:broken,internal:heuristic');
    assert.ok(quarantines(classifyFinding('Eicar-Test-Signature'), 'internal', policy));
    assert.throws(() => parseScanPolicy('internal:malware'), /malware never passes/);
  });

  it('names the bad item of a malformed policy', () => {
    assert.throws(() => parseScanPolicy('sideways:encrypted'), /"sideways:encrypted" is not direction:category/);
    assert.throws(() => parseScanPolicy('internal'), /"internal"/);
  });
});
