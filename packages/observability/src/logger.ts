import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * The process logger: JSON lines with `service`. Per message, use `messageLogger` so every line carries
 * `messageId` and `traceId`. Errors are logged with a stable SCREAMING_SNAKE `code` (docs/LOG-CODES.md).
 */
export function createLogger(
  service: string,
  level = process.env.SMGW_LOG_LEVEL ?? 'info',
  /** Where the lines go (tests capture them); default stdout. */
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Never log secrets, even by accident.
    redact: {
      paths: [
        'password',
        '*.password',
        'token',
        '*.token',
        'authorization',
        '*.authorization',
        'masterKey',
        '*.masterKey',
        'masterKeyPrevious',
        '*.masterKeyPrevious',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

export function messageLogger(logger: Logger, ids: { id: string; traceId: string }): Logger {
  return logger.child({ messageId: ids.id, traceId: ids.traceId });
}
