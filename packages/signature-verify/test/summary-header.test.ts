// The X-SMGW-Signature value exactly as SPEC.md shows it, the worst-first order, and a sentence in both languages
// for every sub-indication.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SUB_INDICATION_SENTENCES,
  type SubIndication,
  sentenceFor,
  summaryHeader,
  type VerificationResult,
  worstOf,
} from '../src/index.ts';

type Summary = Pick<VerificationResult, 'overall' | 'coverage' | 'identity'>;

function summary(
  overall: Summary['overall'],
  coverage: Summary['coverage']['status'] = 'full',
  identity: Summary['identity']['status'] = 'match',
): Summary {
  return {
    overall,
    coverage: { status: coverage, covered: [], uncovered: [] },
    identity: { status: identity, fromAddresses: [], senderAddresses: [], signerAddresses: [], problems: [] },
  };
}

describe('summaryHeader', () => {
  const cases: Array<[string, Summary, string]> = [
    [
      'two qualified signatures',
      summary({ indication: 'TOTAL_PASSED', level: 'QES', signatureCount: 2 }),
      'TOTAL_PASSED; level=QES; signatures=2',
    ],
    [
      'an untrusted signer',
      summary({ indication: 'INDETERMINATE', subIndication: 'NO_CERTIFICATE_CHAIN_FOUND', signatureCount: 1 }),
      'INDETERMINATE; sub=NO_CERTIFICATE_CHAIN_FOUND',
    ],
    [
      'changed content',
      summary({ indication: 'TOTAL_FAILED', subIndication: 'HASH_FAILURE', signatureCount: 1 }),
      'TOTAL_FAILED; sub=HASH_FAILURE',
    ],
    ['an unsigned message', summary({ indication: 'NONE', signatureCount: 0 }, 'none', 'not-applicable'), 'NONE'],
    [
      'a partly signed message from someone else',
      summary({ indication: 'TOTAL_PASSED', level: 'AdES', signatureCount: 1 }, 'partial', 'mismatch'),
      'TOTAL_PASSED; level=AdES; signatures=1; coverage=partial; identity=mismatch',
    ],
    [
      'a failed signature with a mismatching From',
      summary(
        { indication: 'TOTAL_FAILED', subIndication: 'SIG_CRYPTO_FAILURE', signatureCount: 1 },
        'full',
        'mismatch',
      ),
      'TOTAL_FAILED; sub=SIG_CRYPTO_FAILURE; identity=mismatch',
    ],
  ];
  for (const [label, input, expected] of cases) {
    it(`writes ${expected} for ${label}`, () => {
      assert.equal(summaryHeader(input), expected);
    });
  }

  it('flags an imitation of the report last, after NONE too: the worst result stays the first token', () => {
    const imitation = { imitation: true };
    assert.equal(
      summaryHeader(summary({ indication: 'NONE', signatureCount: 0 }, 'none', 'not-applicable'), imitation),
      'NONE; imitation=present',
    );
    assert.equal(
      summaryHeader(
        summary({ indication: 'TOTAL_PASSED', level: 'AdES', signatureCount: 1 }, 'partial', 'mismatch'),
        imitation,
      ),
      'TOTAL_PASSED; level=AdES; signatures=1; coverage=partial; identity=mismatch; imitation=present',
    );
    assert.equal(
      summaryHeader(summary({ indication: 'NONE', signatureCount: 0 }, 'none', 'not-applicable'), {}),
      'NONE',
    );
  });
});

describe('worstOf', () => {
  it('puts TOTAL_FAILED over INDETERMINATE over TOTAL_PASSED, first found on a tie', () => {
    const passed = { indication: 'TOTAL_PASSED' as const, n: 1 };
    const indeterminate = { indication: 'INDETERMINATE' as const, n: 2 };
    const indeterminate2 = { indication: 'INDETERMINATE' as const, n: 3 };
    const failed = { indication: 'TOTAL_FAILED' as const, n: 4 };
    assert.equal(worstOf([passed, indeterminate, indeterminate2])?.n, 2);
    assert.equal(worstOf([failed, passed, indeterminate])?.n, 4);
    assert.equal(worstOf([passed, indeterminate, failed])?.n, 4);
    assert.equal(worstOf([]), undefined);
  });
});

describe('sentences', () => {
  it('has a German and an English sentence for every sub-indication, and never the passed one for a failure', () => {
    const passed = sentenceFor('TOTAL_PASSED', undefined);
    for (const [sub, sentence] of Object.entries(SUB_INDICATION_SENTENCES)) {
      assert.ok(sentence.de.length > 20 && sentence.en.length > 20, sub);
      assert.notEqual(sentenceFor('INDETERMINATE', sub as SubIndication).en, passed.en);
    }
    assert.notEqual(sentenceFor('INDETERMINATE', undefined).en, passed.en);
    assert.notEqual(sentenceFor('TOTAL_FAILED', undefined).en, passed.en);
  });
});
