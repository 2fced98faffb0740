// The agency registration form's fields, checked: each field either a clean value or the i18n key of its error.
// Pure: the page module (pages/agency-registration.ts) renders the errors beside their fields.
import { isInternetAddress, normalizeDomain } from '@smgw/config';
import { normalizeMailboxAddress } from '@smgw/mailbox-store';
import type { MessageKey } from './i18n/de.ts';
import { formField } from './pages/form-fields.ts';

export const AGENCY_FORM_FIELDS = [
  'agencyName',
  'contactName',
  'contactEmail',
  'contactPhone',
  'domains',
  'note',
] as const;
export type AgencyFormField = (typeof AGENCY_FORM_FIELDS)[number];

/** The limits of migration 013's agency_registrations, and of what the form takes at all. */
export const AGENCY_FORM_LIMITS = {
  agencyName: 200,
  contactName: 200,
  contactEmail: 320,
  contactPhone: 50,
  /** Characters of the whole domains field; at most MAX_DOMAINS lines of domains. */
  domains: 20 * 254,
  note: 2000,
} as const;
export const MAX_DOMAINS = 20;

export interface AgencyRegistrationInput {
  agencyName: string;
  contactName: string;
  contactEmail: string;
  contactPhone: string | undefined;
  /** Normalised (lower-case A-labels), without duplicates, in the order given. */
  domains: string[];
  note: string | undefined;
}

export type AgencyFormCheck =
  | { ok: true; input: AgencyRegistrationInput }
  | {
      ok: false;
      /** The error of each wrong field (an i18n key and its placeholders). */
      errors: Partial<Record<AgencyFormField, { key: MessageKey; values?: Record<string, string> }>>;
    };

/** Control characters (a name is one line; the note may have line breaks). */
const CONTROL = /[\p{Cc}\u2028\u2029]/u;
const PHONE = /^\+?[0-9 ()/.-]{3,50}$/;
const LOCAL_PART = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$/;

/** The form's values as typed (for showing the form again), each bounded. */
export function agencyFormValues(body: unknown): Record<AgencyFormField, string> {
  return Object.fromEntries(
    AGENCY_FORM_FIELDS.map((name) => [name, formField(body, name, AGENCY_FORM_LIMITS[name] + 200)]),
  ) as Record<AgencyFormField, string>;
}

export function checkAgencyForm(values: Record<AgencyFormField, string>): AgencyFormCheck {
  const errors: Extract<AgencyFormCheck, { ok: false }>['errors'] = {};

  const name = (field: 'agencyName' | 'contactName') => {
    const value = values[field].trim();
    if (value.length < 2 || value.length > AGENCY_FORM_LIMITS[field] || CONTROL.test(value)) {
      errors[field] = { key: `agencyRegistration.error.${field}` };
    }
    return value;
  };
  const agencyName = name('agencyName');
  const contactName = name('contactName');

  let contactEmail = values.contactEmail.trim();
  try {
    const local = contactEmail.slice(0, contactEmail.lastIndexOf('@'));
    if (contactEmail.length > AGENCY_FORM_LIMITS.contactEmail || !LOCAL_PART.test(local)) throw new Error('local part');
    contactEmail = normalizeMailboxAddress(contactEmail);
    // The gateway mails this address: one plain address at a name of the internet (isInternetAddress, the rule
    // deliver sends by), never an address literal, an IPv4 address or a bare host a stranger could point the mail at.
    if (!isInternetAddress(contactEmail)) throw new Error('domain');
  } catch {
    errors.contactEmail = { key: 'agencyRegistration.error.contactEmail' };
  }

  const contactPhone = values.contactPhone.trim();
  if (contactPhone && (!PHONE.test(contactPhone) || (contactPhone.match(/[0-9]/g)?.length ?? 0) < 3)) {
    errors.contactPhone = { key: 'agencyRegistration.error.contactPhone' };
  }

  const domains: string[] = [];
  const lines = values.domains
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);
  if (lines.length === 0) errors.domains = { key: 'agencyRegistration.error.domainsMissing' };
  else if (lines.length > MAX_DOMAINS) {
    errors.domains = { key: 'agencyRegistration.error.domainsTooMany', values: { max: String(MAX_DOMAINS) } };
  } else {
    for (const line of lines) {
      const domain = normalizeDomain(line);
      // A domain of its own: a name with a dot, not an address literal or an address.
      if (!domain?.includes('.') || domain.startsWith('[') || domain.includes('_')) {
        errors.domains = { key: 'agencyRegistration.error.domainInvalid', values: { domain: line.slice(0, 254) } };
        break;
      }
      if (!domains.includes(domain)) domains.push(domain);
    }
  }

  const note = values.note.trim();
  if (note.length > AGENCY_FORM_LIMITS.note || CONTROL.test(note.replace(/\r?\n/g, ' '))) {
    errors.note = { key: 'agencyRegistration.error.note', values: { max: String(AGENCY_FORM_LIMITS.note) } };
  }

  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    input: {
      agencyName,
      contactName,
      contactEmail,
      contactPhone: contactPhone || undefined,
      domains,
      note: note || undefined,
    },
  };
}
