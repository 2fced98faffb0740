// Filled in by the smime work item.
export {};
