// Filled in by the pkix work item.
export {};
