// The BoringSSL verify-chain vectors (*.test files) as validation inputs, per the upstream README.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { CertificatePurpose, TrustAnchorInput } from '../src/pkix/index.ts';
import { BORINGSSL_DIR, readPemCertificates } from './pkix-vectors.ts';

/** Upstream's "DEFAULT" utc_time (BoringSSL pki/test_helpers.cc). */
const DEFAULT_TIME = '211005120000Z';

export interface BoringSslCase {
  name: string;
  endEntity: Uint8Array;
  intermediates: Uint8Array[];
  trustAnchors: TrustAnchorInput[];
  time: Date;
  purpose: CertificatePurpose;
  expectValid: boolean;
  /** expected_user_constrained_policy_set, when the vector states it. */
  expectedPolicies?: string[];
  /** Setting of the vector we map only approximately (said in the failure list). */
  approximation?: string;
}

function findTestFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return findTestFiles(path);
      return name.endsWith('.test') ? [path] : [];
    });
}

function parseUtcTime(value: string): Date {
  const match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!match) throw new Error(`bad utc_time ${value}`);
  const [, yy, mo, dd, hh, mi, ss] = match.map(Number) as number[];
  const year = (yy as number) >= 50 ? 1900 + (yy as number) : 2000 + (yy as number);
  return new Date(Date.UTC(year, (mo as number) - 1, dd, hh, mi, ss));
}

function parseTestFile(path: string): Map<string, string> {
  const fields = new Map<string, string>();
  const lines = readFileSync(path, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith('#') || !line.includes(':')) continue;
    const key = line.slice(0, line.indexOf(':'));
    if (key === 'expected_errors') {
      fields.set(
        key,
        lines
          .slice(i + 1)
          .join('\n')
          .trim(),
      );
      break;
    }
    fields.set(key, line.slice(line.indexOf(':') + 1).trim());
  }
  return fields;
}

function purposeOf(keyPurpose: string): { purpose: CertificatePurpose; approximation?: string } {
  if (keyPurpose === 'ANY_EKU') return { purpose: 'any' };
  if (keyPurpose === 'SERVER_AUTH') return { purpose: 'serverAuth' };
  if (keyPurpose === 'CLIENT_AUTH') return { purpose: 'clientAuth' };
  if (keyPurpose.startsWith('SERVER_AUTH'))
    return { purpose: 'serverAuth', approximation: `${keyPurpose} run as SERVER_AUTH` };
  if (keyPurpose.startsWith('CLIENT_AUTH'))
    return { purpose: 'clientAuth', approximation: `${keyPurpose} run as CLIENT_AUTH` };
  return { purpose: 'any', approximation: `${keyPurpose} is not a purpose we support; run as ANY_EKU` };
}

function anchorsOf(trust: string, last: Uint8Array): { anchors: TrustAnchorInput[]; approximation?: string } {
  switch (trust) {
    case 'TRUSTED_ANCHOR':
      return { anchors: [{ certificate: last }] };
    case 'TRUSTED_ANCHOR_WITH_EXPIRATION':
      return { anchors: [{ certificate: last, checkValidity: true }] };
    case 'TRUSTED_ANCHOR_WITH_CONSTRAINTS':
      return { anchors: [{ certificate: last, enforceConstraints: true }] };
    case 'TRUSTED_ANCHOR_WITH_EXPIRATION_AND_CONSTRAINTS':
      return { anchors: [{ certificate: last, enforceConstraints: true, checkValidity: true }] };
    case 'TRUSTED_ANCHOR_OR_LEAF':
      return {
        anchors: [{ certificate: last }],
        approximation: 'leaf trust is not supported; last certificate used as anchor',
      };
    case 'DISTRUSTED':
    case 'UNSPECIFIED':
      return { anchors: [] };
    default:
      return { anchors: [{ certificate: last, enforceConstraints: true }], approximation: `${trust} is not supported` };
  }
}

export function boringSslCases(): BoringSslCase[] {
  return findTestFiles(BORINGSSL_DIR).map((path) => {
    const fields = parseTestFile(path);
    const chain = readPemCertificates(join(dirname(path), fields.get('chain') ?? 'chain.pem'));
    const last = chain[chain.length - 1] as Uint8Array;
    const time = fields.get('utc_time') ?? 'DEFAULT';
    const { purpose, approximation: purposeNote } = purposeOf(fields.get('key_purpose') ?? 'ANY_EKU');
    const { anchors, approximation: trustNote } = anchorsOf(fields.get('last_cert_trust') ?? 'UNSPECIFIED', last);
    const approximation = [purposeNote, trustNote].filter(Boolean).join('; ');
    const policies = fields.get('expected_user_constrained_policy_set');
    return {
      name: relative(BORINGSSL_DIR, path),
      endEntity: chain[0] as Uint8Array,
      intermediates: chain.slice(1, -1),
      trustAnchors: anchors,
      time: parseUtcTime(time === 'DEFAULT' ? DEFAULT_TIME : time),
      purpose,
      // Only ERROR lines make BoringSSL refuse a chain; WARNING lines accompany a valid one.
      expectValid: !(fields.get('expected_errors') ?? '').includes('ERROR:'),
      ...(approximation ? { approximation } : {}),
      ...(policies !== undefined
        ? {
            expectedPolicies: policies
              .split(',')
              .map((p) => p.trim())
              .filter(Boolean)
              .sort(),
          }
        : {}),
    };
  });
}
