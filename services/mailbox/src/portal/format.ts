// Numbers and times as the reader's language writes them: "12,3 MB" and "01.07.2025, 10:00" in German.
import type { Language } from './i18n/index.ts';

const LOCALES: Record<Language, string> = { de: 'de-DE', en: 'en-GB' };
/** The portal's readers are in Germany: times are shown in German time, whatever the server's zone. */
export const DISPLAY_TIME_ZONE = 'Europe/Berlin';

/** Megabytes with at most one decimal: "12,3", "30", "0,1" (a byte more than nothing is never "0"). */
export function formatMegabytes(bytes: number, lang: Language): string {
  const mb = bytes / (1024 * 1024);
  const shown = bytes > 0 && mb < 0.1 ? 0.1 : mb;
  return new Intl.NumberFormat(LOCALES[lang], { maximumFractionDigits: 1 }).format(shown);
}

/** A message's size: bytes under 1 KB, KB under 1 MB, else MB, one decimal. */
export function formatSize(bytes: number, lang: Language): string {
  const number = new Intl.NumberFormat(LOCALES[lang], { maximumFractionDigits: 1 });
  if (bytes < 1024) return `${number.format(bytes)} B`;
  if (bytes < 1024 * 1024) return `${number.format(bytes / 1024)} KB`;
  return `${number.format(bytes / (1024 * 1024))} MB`;
}

export function formatDateTime(date: Date, lang: Language): string {
  return new Intl.DateTimeFormat(LOCALES[lang], {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: DISPLAY_TIME_ZONE,
  }).format(date);
}
