// Numbers and times as the reader's language writes them: "12,3 MB" and "01.07.2025, 10:00" in German.
import type { Language } from './i18n/index.ts';

const LOCALES: Record<Language, string> = { de: 'de-DE', en: 'en-GB' };
/** The portal's readers are in Germany: times are shown in German time, whatever the server's zone. */
export const DISPLAY_TIME_ZONE = 'Europe/Berlin';

// Made once per language: building an Intl formatter costs far more than formatting with it (a folder page formats
// every row's date and size; made per call they were most of the page's time).
const NUMBER = {
  de: new Intl.NumberFormat(LOCALES.de, { maximumFractionDigits: 1 }),
  en: new Intl.NumberFormat(LOCALES.en, { maximumFractionDigits: 1 }),
} satisfies Record<Language, Intl.NumberFormat>;
const DATE_TIME_OPTIONS = { dateStyle: 'medium', timeStyle: 'short', timeZone: DISPLAY_TIME_ZONE } as const;
const DATE_TIME = {
  de: new Intl.DateTimeFormat(LOCALES.de, DATE_TIME_OPTIONS),
  en: new Intl.DateTimeFormat(LOCALES.en, DATE_TIME_OPTIONS),
} satisfies Record<Language, Intl.DateTimeFormat>;

/** Megabytes with at most one decimal: "12,3", "30", "0,1" (a byte more than nothing is never "0"). */
export function formatMegabytes(bytes: number, lang: Language): string {
  const mb = bytes / (1024 * 1024);
  const shown = bytes > 0 && mb < 0.1 ? 0.1 : mb;
  return NUMBER[lang].format(shown);
}

/** A message's size: bytes under 1 KB, KB under 1 MB, else MB, one decimal. */
export function formatSize(bytes: number, lang: Language): string {
  const number = NUMBER[lang];
  if (bytes < 1024) return `${number.format(bytes)} B`;
  if (bytes < 1024 * 1024) return `${number.format(bytes / 1024)} KB`;
  return `${number.format(bytes / (1024 * 1024))} MB`;
}

export function formatDateTime(date: Date, lang: Language): string {
  return DATE_TIME[lang].format(date);
}
