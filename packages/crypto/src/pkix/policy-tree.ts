// The valid_policy_tree of RFC 5280 §6.1.2 (a), processed by §6.1.3 (d), §6.1.4 (b) and §6.1.5 (g).
import type { PolicyInformation } from './certificate.ts';
import { ANY_POLICY } from './types.ts';

export interface PolicyNode {
  validPolicy: string;
  qualifiers: unknown[];
  expectedPolicySet: Set<string>;
  parent: PolicyNode | null;
  children: PolicyNode[];
  depth: number;
}

/** The tree as its levels (level 0 holds the root); null is the RFC's NULL tree. */
export type PolicyTree = PolicyNode[][] | null;

export function initialPolicyTree(): PolicyTree {
  return [
    [
      {
        validPolicy: ANY_POLICY,
        qualifiers: [],
        expectedPolicySet: new Set([ANY_POLICY]),
        parent: null,
        children: [],
        depth: 0,
      },
    ],
  ];
}

function addChild(
  tree: PolicyNode[][],
  parent: PolicyNode,
  validPolicy: string,
  qualifiers: unknown[],
  expected: Set<string>,
): void {
  const depth = parent.depth + 1;
  const node: PolicyNode = { validPolicy, qualifiers, expectedPolicySet: expected, parent, children: [], depth };
  parent.children.push(node);
  while (tree.length <= depth) tree.push([]);
  tree[depth]?.push(node);
}

function removeNode(tree: PolicyNode[][], node: PolicyNode): void {
  const level = tree[node.depth];
  if (level) tree[node.depth] = level.filter((n) => n !== node);
  if (node.parent) node.parent.children = node.parent.children.filter((n) => n !== node);
  for (const child of [...node.children]) removeNode(tree, child);
}

/** Deletes nodes above `depth` that have no children, bottom up; returns null when the root goes too. */
function prune(tree: PolicyNode[][], depth: number): PolicyTree {
  for (let d = depth - 1; d >= 0; d--) {
    for (const node of [...(tree[d] ?? [])]) {
      if (node.children.length === 0) removeNode(tree, node);
    }
  }
  return (tree[0]?.length ?? 0) === 0 ? null : tree;
}

/** §6.1.3 (d): certificate i (1-based) with a certificatePolicies extension. */
export function processCertificatePolicies(
  tree: PolicyNode[][],
  i: number,
  policies: PolicyInformation[],
  anyPolicyAllowed: boolean,
): PolicyTree {
  const parents = tree[i - 1] ?? [];
  for (const { policy, qualifiers } of policies) {
    if (policy === ANY_POLICY) continue;
    const matching = parents.filter((node) => node.expectedPolicySet.has(policy));
    if (matching.length > 0) {
      for (const parent of matching) addChild(tree, parent, policy, qualifiers, new Set([policy]));
    } else {
      for (const parent of parents.filter((node) => node.validPolicy === ANY_POLICY)) {
        addChild(tree, parent, policy, qualifiers, new Set([policy]));
      }
    }
  }
  const any = policies.find((p) => p.policy === ANY_POLICY);
  if (any && anyPolicyAllowed) {
    for (const parent of parents) {
      for (const expected of parent.expectedPolicySet) {
        if (!parent.children.some((child) => child.validPolicy === expected)) {
          addChild(tree, parent, expected, any.qualifiers, new Set([expected]));
        }
      }
    }
  }
  return prune(tree, i);
}

/** §6.1.4 (b): policy mappings of certificate i. */
export function processPolicyMappings(
  tree: PolicyNode[][],
  i: number,
  mappings: Array<{ issuerDomainPolicy: string; subjectDomainPolicy: string }>,
  mappingAllowed: boolean,
): PolicyTree {
  const byIssuerPolicy = new Map<string, Set<string>>();
  for (const m of mappings) {
    const set = byIssuerPolicy.get(m.issuerDomainPolicy) ?? new Set<string>();
    set.add(m.subjectDomainPolicy);
    byIssuerPolicy.set(m.issuerDomainPolicy, set);
  }
  for (const [issuerPolicy, subjectPolicies] of byIssuerPolicy) {
    const level = tree[i] ?? [];
    const nodes = level.filter((node) => node.validPolicy === issuerPolicy);
    if (mappingAllowed) {
      if (nodes.length > 0) {
        for (const node of nodes) node.expectedPolicySet = new Set(subjectPolicies);
      } else {
        const anyNode = level.find((node) => node.validPolicy === ANY_POLICY);
        if (anyNode?.parent) addChild(tree, anyNode.parent, issuerPolicy, anyNode.qualifiers, new Set(subjectPolicies));
      }
    } else {
      for (const node of nodes) removeNode(tree, node);
    }
  }
  return mappingAllowed ? tree : prune(tree, i);
}

/** §6.1.5 (g): intersect the tree with the user-initial-policy-set; returns the tree and the policies it yields. */
export function intersectWithInitialPolicySet(
  tree: PolicyTree,
  n: number,
  initialPolicySet: string[],
): { tree: PolicyTree; policies: string[] } {
  if (tree === null) return { tree: null, policies: [] };
  const userSet = new Set(initialPolicySet);
  if (!userSet.has(ANY_POLICY)) {
    // valid_policy_node_set: nodes whose parent is an anyPolicy node.
    const nodeSet = tree.flat().filter((node) => node.parent?.validPolicy === ANY_POLICY);
    for (const node of nodeSet) {
      if (node.validPolicy !== ANY_POLICY && !userSet.has(node.validPolicy)) removeNode(tree, node);
    }
    const anyLeaf = (tree[n] ?? []).find((node) => node.validPolicy === ANY_POLICY);
    if (anyLeaf?.parent) {
      const present = new Set(
        tree
          .flat()
          .filter((node) => node.parent?.validPolicy === ANY_POLICY)
          .map((node) => node.validPolicy),
      );
      for (const policy of userSet) {
        if (!present.has(policy)) addChild(tree, anyLeaf.parent, policy, anyLeaf.qualifiers, new Set([policy]));
      }
      removeNode(tree, anyLeaf);
    }
    const pruned = prune(tree, n);
    if (pruned === null || (pruned[n]?.length ?? 0) === 0) return { tree: null, policies: [] };
    tree = pruned;
  }
  const leaves = tree[n] ?? [];
  if (leaves.length === 0) return { tree: null, policies: [] };
  // The user-constrained policy set in the anchor's domain: for each leaf, the ancestor whose parent is an
  // anyPolicy node (before any mapping renamed it), as RFC 5280 §6.1.5 (g) compares with the initial set.
  const policies = [...new Set(leaves.map((leaf) => authorityDomainPolicy(leaf)))].sort();
  return { tree, policies };
}

function authorityDomainPolicy(leaf: PolicyNode): string {
  let node = leaf;
  while (node.parent && node.parent.validPolicy !== ANY_POLICY) node = node.parent;
  return node.validPolicy;
}
