// The trusted lists (ETSI TS 119 612) this replica judges qualified status by, loaded once at start from the
// operator's files (signatures checked by @smgw/trusted-list), and the verifier's qualifiedStatus hook on them.
// None configured: no signature is ever called qualified, and the report says why.
import { type QualifiedStatus, type QualifiedStatusSource, withoutTrustedList } from '@smgw/signature-verify';
import {
  type LoadedTrustedList,
  loadListOfTrustedListsFromFiles,
  loadTrustedListFile,
  qualifiedStatusAt,
  type RefusedList,
  readSignerCertificates,
  type TrustedListConfig,
} from '@smgw/trusted-list';

export interface TrustedLists {
  lists: LoadedTrustedList[];
  /** National lists the LOTL named that did not verify: never used, logged at start. */
  refused: RefusedList[];
}

/** Loads what the settings name. A configured list that does not verify throws (TrustedListError): start fails. */
export async function loadTrustedLists(config: TrustedListConfig, now: Date): Promise<TrustedLists> {
  const lists: LoadedTrustedList[] = [];
  const refused: TrustedLists['refused'] = [];
  if (config.single) {
    const signerCertificates = await readSignerCertificates(config.single.signerCertFile);
    lists.push(await loadTrustedListFile(config.single.file, { signerCertificates, now }));
  }
  if (config.listOfLists) {
    const { file, directory, signerCertFile } = config.listOfLists;
    const loaded = await loadListOfTrustedListsFromFiles(file, directory, {
      lotlSignerCertificates: await readSignerCertificates(signerCertFile),
      now,
    });
    lists.push(...loaded.lists);
    refused.push(...loaded.refused);
  }
  return { lists, refused };
}

/** The verifier's hook: the lists' answer for the signer's issuer at the validation time (or a proven time). */
export function qualifiedStatusFrom(lists: readonly LoadedTrustedList[]): QualifiedStatusSource {
  if (lists.length === 0) return withoutTrustedList;
  return (signer, atTime, chain): QualifiedStatus => {
    const path = chain.length > 1 ? chain.map((c) => c.der) : [signer.der];
    const status = qualifiedStatusAt(lists, { chain: path }, atTime);
    const source = status.territory
      ? `trusted list ${status.territory}: ${status.providerName ?? '?'} / ${status.serviceName ?? '?'}${status.listStale ? ' (list past its next update)' : ''}`
      : 'trusted lists';
    if (status.qualifiedForESignatureWithQscd) return { status: 'qualified-qscd', source, reason: status.reason };
    if (status.qualified) return { status: 'qualified', source, reason: status.reason };
    if (!status.matchedBy) return { status: 'unknown', source, reason: status.reason };
    return { status: 'not-qualified', source, reason: status.reason };
  };
}
