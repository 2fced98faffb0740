// Filled in by the openpgp work item.
export {};
