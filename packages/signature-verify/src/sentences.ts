// The plain-language sentence per indication and sub-indication, German first, English too. Data, not branches:
// the report PDF and the XML report take the same sentences. The sentences say what the cryptography proves and
// nothing more; the technical reasons travel beside them in `reasons`.
import type { Indication, SubIndication } from './indication.ts';

export interface Sentence {
  de: string;
  en: string;
}

export const PASSED_SENTENCE: Sentence = {
  de: 'Die Signatur ist gültig: Der signierte Inhalt ist unverändert, und das Zertifikat des Unterzeichners führt zu einem vertrauenswürdigen Aussteller.',
  en: 'The signature is valid: the signed content is unchanged, and the signer’s certificate leads to a trusted issuer.',
};

export const SUB_INDICATION_SENTENCES: Readonly<Record<SubIndication, Sentence>> = {
  FORMAT_FAILURE: {
    de: 'Die Signatur ist ungültig: Sie ist nicht korrekt aufgebaut und kann nicht geprüft werden.',
    en: 'The signature is invalid: it is not correctly structured and cannot be checked.',
  },
  HASH_FAILURE: {
    de: 'Die Signatur ist ungültig: Der signierte Inhalt wurde nach dem Signieren verändert.',
    en: 'The signature is invalid: the signed content was changed after signing.',
  },
  SIG_CRYPTO_FAILURE: {
    de: 'Die Signatur ist ungültig: Der Signaturwert passt nicht zum Zertifikat des angegebenen Unterzeichners.',
    en: 'The signature is invalid: the signature value does not match the certificate of the stated signer.',
  },
  REVOKED: {
    de: 'Die Signatur ist ungültig: Das Zertifikat des Unterzeichners ist gesperrt.',
    en: 'The signature is invalid: the signer’s certificate is revoked.',
  },
  EXPIRED: {
    de: 'Die Signatur ist ungültig: Sie wurde erst nach Ablauf des Zertifikats erstellt.',
    en: 'The signature is invalid: it was made after the certificate had expired.',
  },
  NOT_YET_VALID: {
    de: 'Die Signatur kann nicht bestätigt werden: Das Zertifikat des Unterzeichners ist noch nicht gültig.',
    en: 'The signature cannot be confirmed: the signer’s certificate is not yet valid.',
  },
  SIG_CONSTRAINTS_FAILURE: {
    de: 'Die Signatur kann nicht bestätigt werden: Sie erfüllt die Prüfvorgaben nicht (z. B. zu tief verschachtelt).',
    en: 'The signature cannot be confirmed: it does not meet the validation constraints (e.g. nested too deeply).',
  },
  CHAIN_CONSTRAINTS_FAILURE: {
    de: 'Die Signatur kann nicht bestätigt werden: Ein Zertifikat der Kette ist für diesen Zweck nicht zugelassen.',
    en: 'The signature cannot be confirmed: a certificate of the chain is not allowed for this purpose.',
  },
  CERTIFICATE_CHAIN_GENERAL_FAILURE: {
    de: 'Die Signatur kann nicht bestätigt werden: Die Zertifikatskette ist fehlerhaft.',
    en: 'The signature cannot be confirmed: the certificate chain is faulty.',
  },
  CRYPTO_CONSTRAINTS_FAILURE: {
    de: 'Die Signatur kann nicht bestätigt werden: Sie verwendet ein Verfahren, das nicht mehr als sicher gilt.',
    en: 'The signature cannot be confirmed: it uses an algorithm that is no longer considered secure.',
  },
  NO_SIGNING_CERTIFICATE_FOUND: {
    de: 'Die Signatur kann nicht bestätigt werden: Das Zertifikat des Unterzeichners fehlt oder ist nicht eindeutig.',
    en: 'The signature cannot be confirmed: the signer’s certificate is missing or ambiguous.',
  },
  NO_CERTIFICATE_CHAIN_FOUND: {
    de: 'Die Signatur kann nicht bestätigt werden: Das Zertifikat des Unterzeichners führt zu keinem vertrauenswürdigen Aussteller.',
    en: 'The signature cannot be confirmed: the signer’s certificate does not lead to a trusted issuer.',
  },
  REVOKED_CA_NO_POE: {
    de: 'Die Signatur kann nicht bestätigt werden: Ein Ausstellerzertifikat der Kette ist gesperrt.',
    en: 'The signature cannot be confirmed: an issuing certificate of the chain is revoked.',
  },
  OUT_OF_BOUNDS_NO_POE: {
    de: 'Die Signatur kann nicht bestätigt werden: Das Zertifikat ist abgelaufen, und es ist nicht nachgewiesen, dass vorher signiert wurde.',
    en: 'The signature cannot be confirmed: the certificate has expired, and there is no proof that the signature was made before.',
  },
  TRY_LATER: {
    de: 'Die Signatur kann derzeit nicht bestätigt werden: Der Sperrstatus des Zertifikats war nicht abrufbar.',
    en: 'The signature cannot be confirmed at the moment: the revocation status of the certificate could not be obtained.',
  },
  SIGNED_DATA_NOT_FOUND: {
    de: 'Die Signatur kann nicht bestätigt werden: Das signierte Dokument liegt nicht vor.',
    en: 'The signature cannot be confirmed: the signed document is not present.',
  },
};

const WITHOUT_SUB_INDICATION: Readonly<Record<Indication, Sentence>> = {
  TOTAL_PASSED: PASSED_SENTENCE,
  INDETERMINATE: {
    de: 'Die Signatur kann nicht bestätigt werden.',
    en: 'The signature cannot be confirmed.',
  },
  TOTAL_FAILED: { de: 'Die Signatur ist ungültig.', en: 'The signature is invalid.' },
};

export function sentenceFor(indication: Indication, subIndication: SubIndication | undefined): Sentence {
  if (indication === 'TOTAL_PASSED' || subIndication === undefined) return WITHOUT_SUB_INDICATION[indication];
  return SUB_INDICATION_SENTENCES[subIndication];
}
