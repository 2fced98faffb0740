// The portal's two languages: German by default, English via `?lang=en` (remembered in a cookie).
import { de, type MessageKey } from './de.ts';
import { en } from './en.ts';

export type { MessageKey } from './de.ts';

export const LANGUAGES = ['de', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

const DICTIONARIES: Record<Language, Record<MessageKey, string>> = { de, en };

export type Translate = (key: MessageKey, values?: Record<string, string | number>) => string;

/** The text of `key` in `lang` with its {placeholders} filled in (the view escapes the result). */
export function translate(lang: Language, key: MessageKey, values?: Record<string, string | number>): string {
  const text = DICTIONARIES[lang][key] ?? de[key] ?? key;
  if (!values) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));
}

export function translator(lang: Language): Translate {
  return (key, values) => translate(lang, key, values);
}

export function isLanguage(value: unknown): value is Language {
  return value === 'de' || value === 'en';
}
