// The NIST PKITS cases: expectation from the file name (Valid…/Invalid…, default settings), plus the §4.8 policy
// cases (and §4.1/4.10/4.12 variants) whose result depends on the user-initial settings, transcribed from
// PKITS.pdf as in BoringSSL pki/testdata/nist-pkits/pkits_testcases-inl.h.

import { join } from 'node:path';
import { listFiles, PKITS_DIR } from './pkix-vectors.ts';

export const POLICY_1 = '2.16.840.1.101.3.2.1.48.1';
export const POLICY_2 = '2.16.840.1.101.3.2.1.48.2';
export const POLICY_3 = '2.16.840.1.101.3.2.1.48.3';
export const POLICY_6 = '2.16.840.1.101.3.2.1.48.6';

export interface PkitsCase {
  name: string;
  endEntity: string;
  valid: boolean;
  initialPolicySet?: string[];
  initialExplicitPolicy?: boolean;
  initialPolicyMappingInhibit?: boolean;
  initialAnyPolicyInhibit?: boolean;
}

const SETTINGS_DEPENDENT: PkitsCase[] = [
  {
    name: '4.8.1 subpart 2',
    endEntity: 'ValidCertificatePathTest1EE',
    valid: true,
    initialExplicitPolicy: true,
    initialPolicySet: [POLICY_1],
  },
  {
    name: '4.8.1 subpart 3',
    endEntity: 'ValidCertificatePathTest1EE',
    valid: false,
    initialExplicitPolicy: true,
    initialPolicySet: [POLICY_2],
  },
  {
    name: '4.8.1 subpart 4',
    endEntity: 'ValidCertificatePathTest1EE',
    valid: true,
    initialExplicitPolicy: true,
    initialPolicySet: [POLICY_1, POLICY_2],
  },
  { name: '4.8.2 subpart 1', endEntity: 'AllCertificatesNoPoliciesTest2EE', valid: true },
  { name: '4.8.2 subpart 2', endEntity: 'AllCertificatesNoPoliciesTest2EE', valid: false, initialExplicitPolicy: true },
  { name: '4.8.3 subpart 1', endEntity: 'DifferentPoliciesTest3EE', valid: true },
  { name: '4.8.3 subpart 2', endEntity: 'DifferentPoliciesTest3EE', valid: false, initialExplicitPolicy: true },
  {
    name: '4.8.3 subpart 3',
    endEntity: 'DifferentPoliciesTest3EE',
    valid: false,
    initialExplicitPolicy: true,
    initialPolicySet: [POLICY_1, POLICY_2],
  },
  { name: '4.8.4', endEntity: 'DifferentPoliciesTest4EE', valid: false },
  { name: '4.8.5', endEntity: 'DifferentPoliciesTest5EE', valid: false },
  { name: '4.8.6 subpart 1', endEntity: 'OverlappingPoliciesTest6EE', valid: true },
  { name: '4.8.6 subpart 2', endEntity: 'OverlappingPoliciesTest6EE', valid: true, initialPolicySet: [POLICY_1] },
  { name: '4.8.6 subpart 3', endEntity: 'OverlappingPoliciesTest6EE', valid: false, initialPolicySet: [POLICY_2] },
  { name: '4.8.7', endEntity: 'DifferentPoliciesTest7EE', valid: false },
  { name: '4.8.8', endEntity: 'DifferentPoliciesTest8EE', valid: false },
  { name: '4.8.9', endEntity: 'DifferentPoliciesTest9EE', valid: false },
  { name: '4.8.10 subpart 1', endEntity: 'AllCertificatesSamePoliciesTest10EE', valid: true },
  {
    name: '4.8.10 subpart 2',
    endEntity: 'AllCertificatesSamePoliciesTest10EE',
    valid: true,
    initialPolicySet: [POLICY_1],
  },
  {
    name: '4.8.10 subpart 3',
    endEntity: 'AllCertificatesSamePoliciesTest10EE',
    valid: true,
    initialPolicySet: [POLICY_2],
  },
  { name: '4.8.11 subpart 1', endEntity: 'AllCertificatesanyPolicyTest11EE', valid: true },
  {
    name: '4.8.11 subpart 2',
    endEntity: 'AllCertificatesanyPolicyTest11EE',
    valid: true,
    initialPolicySet: [POLICY_1],
  },
  { name: '4.8.12', endEntity: 'DifferentPoliciesTest12EE', valid: false },
  {
    name: '4.8.13 subpart 1',
    endEntity: 'AllCertificatesSamePoliciesTest13EE',
    valid: true,
    initialPolicySet: [POLICY_1],
  },
  {
    name: '4.8.13 subpart 2',
    endEntity: 'AllCertificatesSamePoliciesTest13EE',
    valid: true,
    initialPolicySet: [POLICY_2],
  },
  {
    name: '4.8.13 subpart 3',
    endEntity: 'AllCertificatesSamePoliciesTest13EE',
    valid: true,
    initialPolicySet: [POLICY_3],
  },
  { name: '4.8.14 subpart 1', endEntity: 'AnyPolicyTest14EE', valid: true, initialPolicySet: [POLICY_1] },
  { name: '4.8.14 subpart 2', endEntity: 'AnyPolicyTest14EE', valid: false, initialPolicySet: [POLICY_2] },
  { name: '4.8.15', endEntity: 'UserNoticeQualifierTest15EE', valid: true },
  { name: '4.8.16', endEntity: 'UserNoticeQualifierTest16EE', valid: true },
  { name: '4.8.17', endEntity: 'UserNoticeQualifierTest17EE', valid: true },
  { name: '4.8.18 subpart 1', endEntity: 'UserNoticeQualifierTest18EE', valid: true, initialPolicySet: [POLICY_1] },
  { name: '4.8.18 subpart 2', endEntity: 'UserNoticeQualifierTest18EE', valid: true, initialPolicySet: [POLICY_2] },
  { name: '4.8.19', endEntity: 'UserNoticeQualifierTest19EE', valid: true },
  { name: '4.8.20 subpart 1', endEntity: 'CPSPointerQualifierTest20EE', valid: true },
  { name: '4.8.20 subpart 2', endEntity: 'CPSPointerQualifierTest20EE', valid: true, initialExplicitPolicy: true },
  { name: '4.10.1 subpart 2', endEntity: 'ValidPolicyMappingTest1EE', valid: true, initialPolicySet: [POLICY_1] },
  { name: '4.10.1 subpart 3', endEntity: 'ValidPolicyMappingTest1EE', valid: false, initialPolicyMappingInhibit: true },
  { name: '4.12.3 subpart 1', endEntity: 'inhibitAnyPolicyTest3EE', valid: true },
  { name: '4.12.3 subpart 2', endEntity: 'inhibitAnyPolicyTest3EE', valid: false, initialAnyPolicyInhibit: true },
];

/** Every PKITS case: one per Valid…/Invalid… end-entity file with default settings, then the settings-dependent ones. */
export function pkitsCases(): PkitsCase[] {
  const byName = listFiles(join(PKITS_DIR, 'certs'), 'EE.crt')
    .map((file) => file.replace(/\.crt$/, ''))
    .filter((name) => name.startsWith('Valid') || name.startsWith('Invalid'))
    .map((name) => ({ name, endEntity: name, valid: name.startsWith('Valid') }));
  return [...byName, ...SETTINGS_DEPENDENT];
}
