// The contract between services: the message envelope, its itinerary, the queue names.
// Every process validates an envelope when it publishes and when it consumes one (see parseEnvelope).
export * from './envelope.ts';
export * from './envelope-builders.ts';
export * from './ids.ts';
export * from './itinerary.ts';
export * from './queues.ts';
