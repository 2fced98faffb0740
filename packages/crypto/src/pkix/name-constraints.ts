// Name constraints (RFC 5280 §4.2.1.10, §6.1.3 b/c). Instead of intersecting subtrees into one state, every
// constraining certificate's subtrees are kept and each later certificate is checked against all of them:
// the same outcome, and far simpler to get right.

import type { GeneralNameValue, GeneralSubtreeValue, ParsedCertificate } from './certificate.ts';
import { nameRdns } from './distinguished-name.ts';

const RFC822 = 1;
const DNS = 2;
const DIRECTORY = 4;
const URI = 6;
const IP = 7;
const SUPPORTED = new Set([RFC822, DNS, DIRECTORY, URI, IP]);
const MAX_NAME_CHECKS = 1 << 20;

function lower(value: string | Uint8Array): string {
  return typeof value === 'string' ? value.toLowerCase() : '';
}

function hostMatches(host: string, constraint: string): boolean {
  if (constraint === '') return true;
  if (constraint.startsWith('.')) return host.endsWith(constraint);
  return host === constraint;
}

function dnsMatches(name: string, constraint: string): boolean {
  if (constraint === '') return true;
  if (constraint.startsWith('.')) return name.endsWith(constraint);
  return name === constraint || name.endsWith(`.${constraint}`);
}

function rfc822Matches(address: string, constraint: string): boolean {
  const at = address.lastIndexOf('@');
  if (at < 0) return false;
  if (constraint.includes('@')) {
    // A full mailbox: local part exact, domain case-insensitive.
    const cAt = constraint.lastIndexOf('@');
    return (
      address.slice(0, at) === constraint.slice(0, cAt) &&
      address.slice(at + 1).toLowerCase() === constraint.slice(cAt + 1).toLowerCase()
    );
  }
  return hostMatches(address.slice(at + 1).toLowerCase(), constraint.toLowerCase());
}

function uriHost(uri: string): string | undefined {
  const match = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(uri);
  const host = match?.[1];
  return host ? host.toLowerCase() : undefined;
}

function ipMatches(address: Uint8Array, constraint: Uint8Array): boolean {
  if (constraint.length !== address.length * 2) return false;
  for (let i = 0; i < address.length; i++) {
    const mask = constraint[address.length + i] ?? 0;
    if (((address[i] ?? 0) & mask) !== ((constraint[i] ?? 0) & mask)) return false;
  }
  return true;
}

function directoryMatches(name: string, constraint: string): boolean {
  const nameParts = nameRdns(name);
  const constraintParts = nameRdns(constraint);
  if (constraintParts.length > nameParts.length) return false;
  return constraintParts.every((rdn, i) => nameParts[i] === rdn);
}

function nameMatches(name: GeneralNameValue, base: GeneralNameValue): boolean {
  switch (name.type) {
    case RFC822:
      return rfc822Matches(String(name.value), String(base.value));
    case DNS:
      return dnsMatches(lower(name.value), lower(base.value));
    case DIRECTORY:
      return directoryMatches(String(name.value), String(base.value));
    case URI: {
      const host = uriHost(String(name.value));
      return host !== undefined && hostMatches(host, lower(base.value));
    }
    case IP:
      return name.value instanceof Uint8Array && base.value instanceof Uint8Array && ipMatches(name.value, base.value);
    default:
      return false;
  }
}

/** The names of a certificate that name constraints apply to. */
export function constrainedNames(certificate: ParsedCertificate): GeneralNameValue[] {
  const names: GeneralNameValue[] = [...certificate.subjectAltNames];
  if (certificate.subject !== '') names.push({ type: DIRECTORY, value: certificate.subject });
  // §4.2.1.10: emailAddress attributes in the subject are constrained as rfc822Names.
  for (const email of certificate.subjectEmailAddresses) names.push({ type: RFC822, value: email });
  return names;
}

/** A sentence saying which name violates the constraints, or undefined when all names are allowed. */
export function nameConstraintViolation(
  names: GeneralNameValue[],
  constraints: { permitted?: GeneralSubtreeValue[]; excluded?: GeneralSubtreeValue[] },
): string | undefined {
  // Bound the work a hostile certificate can cause (names × subtrees of each form), as BoringSSL does.
  for (const type of [DNS, DIRECTORY, IP]) {
    const nameCount = names.filter((name) => name.type === type).length;
    const subtreeCount = [...(constraints.permitted ?? []), ...(constraints.excluded ?? [])].filter(
      (s) => s.base.type === type,
    ).length;
    if (nameCount * subtreeCount > MAX_NAME_CHECKS) {
      return `checking its ${nameCount} names of form ${type} against ${subtreeCount} subtrees is too much work`;
    }
  }
  for (const name of names) {
    const permitted = constraints.permitted?.filter((subtree) => subtree.base.type === name.type) ?? [];
    const excluded = constraints.excluded?.filter((subtree) => subtree.base.type === name.type) ?? [];
    if ((permitted.length > 0 || excluded.length > 0) && !SUPPORTED.has(name.type)) {
      return `a name of form ${name.type} is constrained but that form is not supported`;
    }
    if (permitted.length > 0 && !permitted.some((subtree) => nameMatches(name, subtree.base))) {
      return `the name ${describe(name)} is outside the permitted subtrees`;
    }
    if (excluded.some((subtree) => nameMatches(name, subtree.base))) {
      return `the name ${describe(name)} is in an excluded subtree`;
    }
  }
  return undefined;
}

function describe(name: GeneralNameValue): string {
  if (name.value instanceof Uint8Array) return Buffer.from(name.value).toString('hex');
  return name.type === DIRECTORY ? '(directory name)' : JSON.stringify(name.value);
}
