// Filled in by the key-directory work item.
export {};
