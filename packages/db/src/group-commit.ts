// Group commit: the rows of every message that arrives while a statement runs go into the next statement, so that
// many messages in flight share one round trip and one commit (issue 12: one commit per message was most of
// PostgreSQL's CPU per message). Nothing waits for a batch to fill: a lone item is written at once, and each caller
// still hears only after the commit that holds its own rows.

export interface GroupCommitOptions {
  /** Items per statement at most; more wait for the next one. */
  maxBatch: number;
}

/**
 * `write(items)` commits all of `items` or none. The returned function queues one item and settles once the
 * statement that held it committed (or failed). A batch of several that fails is written again one by one, so that an
 * item's failure (a bad row, a constraint) is only its own; a failure of the database fails each alike.
 */
export function groupCommits<T>(
  write: (items: T[]) => Promise<void>,
  options: GroupCommitOptions,
): (item: T) => Promise<void> {
  if (!(Number.isInteger(options.maxBatch) && options.maxBatch > 0)) {
    throw new RangeError(`maxBatch must be a positive integer, not ${options.maxBatch}`);
  }
  let queued: { item: T; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let writing = false;

  const writeBatch = async (batch: typeof queued) => {
    try {
      await write(batch.map((b) => b.item));
      for (const b of batch) b.resolve();
    } catch (err) {
      if (batch.length === 1) {
        batch[0]?.reject(err);
        return;
      }
      await Promise.all(
        batch.map((b) =>
          write([b.item]).then(
            () => b.resolve(),
            (alone: unknown) => b.reject(alone),
          ),
        ),
      );
    }
  };

  const drain = async () => {
    writing = true;
    try {
      while (queued.length > 0) {
        const batch = queued.slice(0, options.maxBatch);
        queued = queued.slice(batch.length);
        await writeBatch(batch);
      }
    } finally {
      writing = false;
    }
  };

  return (item) =>
    new Promise<void>((resolve, reject) => {
      queued.push({ item, resolve, reject });
      if (!writing) void drain();
    });
}
