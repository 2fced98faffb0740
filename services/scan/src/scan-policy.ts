// What a clamd finding means, as data: real malware is `infected`; what clamd reports because it could not fully
// look inside (encrypted archives, limits, broken files, heuristics) is `suspicious`. Both are quarantined by
// default; an operator may let suspicious categories pass per direction (SMGW_SCAN_PASS_SUSPICIOUS). Malware never passes.
import { DIRECTIONS, type Direction } from '@smgw/envelope';
import type { SignedContentProblemKind } from '@smgw/signature-verify';

export const SUSPICIOUS_CATEGORIES = ['encrypted', 'limits', 'broken', 'heuristic'] as const;
export type SuspiciousCategory = (typeof SUSPICIOUS_CATEGORIES)[number];
/**
 * SignedData whose content could not be taken out to be scanned: suspicious, but no policy lets it pass. Under
 * `broken` or `limits` an operator who meant clamd's heuristics would let a stranger's unreadable SignedData through,
 * and a malformed one placed first would hide the real one after it (the walk stops at the first).
 */
export type UnpassableCategory = 'signed-data';
export type FindingCategory = 'malware' | SuspiciousCategory | UnpassableCategory;

/** First matching prefix wins; a signature matching none is malware. */
export const FINDING_RULES: readonly { prefix: string; category: SuspiciousCategory | UnpassableCategory }[] = [
  { prefix: 'Smgw.Broken.SignedData', category: 'signed-data' },
  { prefix: 'Smgw.Limits.Exceeded.SignedData', category: 'signed-data' },
  // AlertEncrypted / AlertEncryptedArchive / AlertEncryptedDoc: Heuristics.Encrypted.Zip, .RAR, .PDF, .Office …
  { prefix: 'Heuristics.Encrypted.', category: 'encrypted' },
  // AlertExceedsMax: Heuristics.Limits.Exceeded.MaxFileSize, .MaxScanSize, .MaxRecursion, .MaxFiles, .MaxScanTime …
  { prefix: 'Heuristics.Limits.Exceeded', category: 'limits' },
  // Our own: the message is larger than what clamd accepts on a stream (StreamMaxLength), or holds SignedData nested
  // or sized beyond what we take apart.
  { prefix: 'Smgw.Limits.Exceeded', category: 'limits' },
  // Our own: SignedData (or a multipart that may hold one) that cannot be taken apart, so its content was not scanned.
  { prefix: 'Smgw.Broken.', category: 'broken' },
  // AlertBrokenExecutables / AlertBrokenMedia: Heuristics.Broken.Executable, .Media …
  { prefix: 'Heuristics.Broken.', category: 'broken' },
  // Phishing, structured data, OLE2 macros and the rest of clamd's heuristics.
  { prefix: 'Heuristics.', category: 'heuristic' },
];

/** The finding we record when clamd refuses the stream as too long (never passes as clean). */
export const STREAM_LIMIT_FINDING = 'Smgw.Limits.Exceeded.StreamMaxLength';

/** The finding we record when a SignedData's content could not be taken out to be scanned (never passes as clean). */
export const SIGNED_DATA_FINDINGS: Readonly<Record<SignedContentProblemKind, string>> = {
  malformed: 'Smgw.Broken.SignedData',
  'too-deep': 'Smgw.Limits.Exceeded.SignedData.MaxRecursion',
  'too-many': 'Smgw.Limits.Exceeded.SignedData.MaxCount',
  'too-large': 'Smgw.Limits.Exceeded.SignedData.MaxSize',
  'too-many-parts': 'Smgw.Limits.Exceeded.SignedData.MaxParts',
  'header-too-large': 'Smgw.Limits.Exceeded.SignedData.MaxHeader',
};

export type Finding =
  | { verdict: 'infected'; category: 'malware' }
  | { verdict: 'suspicious'; category: SuspiciousCategory | UnpassableCategory };

export function classifyFinding(signature: string): Finding {
  const rule = FINDING_RULES.find((r) => signature.startsWith(r.prefix));
  return rule ? { verdict: 'suspicious', category: rule.category } : { verdict: 'infected', category: 'malware' };
}

/** Per direction, the suspicious categories that pass (with the finding noted in the verdict). Default: none. */
export type ScanPolicy = Readonly<Record<Direction, readonly SuspiciousCategory[]>>;

export const DEFAULT_SCAN_POLICY: ScanPolicy = {
  inbound: [],
  outbound: [],
  internal: [],
  portal: [],
  generated: [],
};

export function quarantines(finding: Finding, direction: Direction, policy: ScanPolicy): boolean {
  if (finding.verdict === 'infected' || finding.category === 'signed-data') return true;
  return !policy[direction].includes(finding.category);
}

/** Parses SMGW_SCAN_PASS_SUSPICIOUS: "direction:category,…", e.g. "internal:encrypted,portal:encrypted". */
export function parseScanPolicy(raw: string): ScanPolicy {
  const policy: Record<Direction, SuspiciousCategory[]> = {
    inbound: [],
    outbound: [],
    internal: [],
    portal: [],
    generated: [],
  };
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [direction, category, ...rest] = item.split(':');
    if (!DIRECTIONS.includes(direction as Direction) || rest.length > 0) {
      throw new Error(`"${item}" is not direction:category (directions: ${DIRECTIONS.join(', ')})`);
    }
    if (!SUSPICIOUS_CATEGORIES.includes(category as SuspiciousCategory)) {
      throw new Error(`"${item}": category must be one of ${SUSPICIOUS_CATEGORIES.join(', ')} (malware never passes)`);
    }
    policy[direction as Direction].push(category as SuspiciousCategory);
  }
  return policy;
}
