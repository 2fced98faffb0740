// The paths `./smgw bench` measures the gateway on (--paths), the addresses each path's load uses, and how a message
// that reached the outside is judged: plain functions, so that what makes a run honest is tested on its own.

export const BENCH_PATHS = ['inbound', 'smime', 'pgp', 'portal'] as const;
export type BenchPath = (typeof BENCH_PATHS)[number];
export type OutboundPath = Exclude<BenchPath, 'inbound'>;

/** The envelope sender and recipient of a path's load (smtp-source writes them into From and To as well). */
export interface PathAddresses {
  from: string;
  to: string;
}

/**
 * inbound: the internet to an agency on the MX port. The others: an agency (SMGW_INTERNAL_DOMAINS) to the outside on
 * the submission port, to a recipient with an S/MIME certificate, with an approved OpenPGP key, or with no key at all
 * (the portal).
 */
export const PATH_ADDRESSES: Record<BenchPath, PathAddresses> = {
  inbound: { from: 'bench@example.org', to: 'amt@behoerde.example' },
  smime: { from: 'bench@behoerde.example', to: 'smime@buerger.example' },
  pgp: { from: 'bench@behoerde.example', to: 'pgp@buerger.example' },
  portal: { from: 'bench@behoerde.example', to: 'portal@buerger.example' },
};

/** What the gateway does on each outbound path after scan, for the tables' notes. */
const OUTBOUND_WORK: Record<OutboundPath, string> = {
  smime: 'S/MIME encryption to the recipient’s certificate (RSA-3072), delivery to the sink',
  pgp: 'OpenPGP encryption to the recipient’s approved key (ed25519/cv25519), delivery to the sink',
  portal:
    'the hand-over to mailbox, which stores the message encrypted in the recipient’s portal mailbox (arrival: its ' +
    'row there) and sends a link notice to the recipient and a PIN notice to the sender through deliver',
};

/** The note under an outbound path's table: what the gateway did, and that the peers did less for the same ratio. */
export function outboundNote(path: OutboundPath): string {
  const text =
    `note: the gateway's ${path} path is submission → scan → ${OUTBOUND_WORK[path]}. The peers get the same ` +
    'messages and only relay them (postfix) or scan and relay them (postfix+amavis): neither encrypts. The ratios ' +
    'are still the ones issue 12 asks for (outbound with S/MIME: at least 3x postfix+amavis).';
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > 116) {
      lines.push(`  ${line}`);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  lines.push(`  ${line}`);
  return lines.join('\n');
}

export const isOutbound = (path: BenchPath): path is OutboundPath => path !== 'inbound';

/** `--paths inbound,smime`: known names, in the order given, each once. */
export function parsePaths(value: string): BenchPath[] {
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const unknown = names.filter((name) => !(BENCH_PATHS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`--paths: no such path ${unknown.join(', ')} (${BENCH_PATHS.join(', ')})`);
  if (names.length === 0) throw new Error(`--paths: name at least one of ${BENCH_PATHS.join(', ')}`);
  return [...new Set(names)] as BenchPath[];
}

/**
 * smtp-source's body is lines of `X` (after a sequence number): a run this long in what reached the outside is the
 * load's text in clear. Base64 or armor makes such a run with a chance of 64^-40.
 */
export const LOAD_TEXT_IN_CLEAR = 'X'.repeat(40);

export type OutsideForm = 'smime' | 'pgp' | 'plaintext' | 'other';

/**
 * The form of one message as smtp-sink dumped it (its own X- fields and Received first, then the message, lines
 * ending in LF or CRLF): judged by the top-level Content-Type label, and plaintext whenever the load's text is in it,
 * whatever the label says.
 */
export function outsideForm(dumped: string): OutsideForm {
  if (dumped.includes(LOAD_TEXT_IN_CLEAR)) return 'plaintext';
  const headerEnd = /\r?\n\r?\n/.exec(dumped);
  const header = (headerEnd ? dumped.slice(0, headerEnd.index) : dumped).replace(/\r?\n[ \t]+/g, ' ');
  const fields = header.split(/\r?\n/).filter((line) => /^content-type\s*:/i.test(line));
  if (fields.length !== 1) return 'other';
  const [type = '', ...parameters] = (fields[0] as string)
    .replace(/^content-type\s*:/i, '')
    .split(';')
    .map((part) => part.trim().toLowerCase());
  const parameter = (name: string) =>
    parameters
      .find((p) => p.startsWith(`${name}=`))
      ?.slice(name.length + 1)
      .replace(/^"(.*)"$/, '$1');
  if (
    (type === 'application/pkcs7-mime' || type === 'application/x-pkcs7-mime') &&
    parameter('smime-type') === 'enveloped-data'
  ) {
    return 'smime';
  }
  if (type === 'multipart/encrypted' && parameter('protocol') === 'application/pgp-encrypted') return 'pgp';
  return 'other';
}

/**
 * What the sample of an outbound path must show at the outside sink before the path is measured: smime and pgp,
 * `expected` messages, every one in the path's encrypted form; portal, nothing of the load (only notices). Any
 * plaintext fails the run.
 */
export function judgeOutsideSample(
  path: OutboundPath,
  forms: OutsideForm[],
  expected: number,
): { ok: boolean; summary: string } {
  const count = (form: OutsideForm) => forms.filter((f) => f === form).length;
  const plaintext = count('plaintext');
  if (plaintext > 0) return { ok: false, summary: `PLAINTEXT REACHED THE OUTSIDE: ${plaintext} of ${forms.length}` };
  if (path === 'portal') {
    return { ok: true, summary: `${forms.length} notice(s) at the outside sink, none with the message text` };
  }
  const label = path === 'smime' ? 'S/MIME (application/pkcs7-mime)' : 'PGP/MIME (multipart/encrypted)';
  const right = count(path);
  const ok = right === expected && forms.length === expected;
  return {
    ok,
    summary: ok
      ? `${right} of ${expected} at the outside sink as ${label}, none in plaintext`
      : `${right} of ${expected} as ${label}, ${forms.length - right} in another form, ${forms.length} in all`,
  };
}
