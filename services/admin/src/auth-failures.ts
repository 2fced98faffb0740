// Wrong bearer tokens (not calls without one), counted per client: after AUTH_FAILURES_PER_CLIENT of them within AUTH_FAILURE_WINDOW_MS of
// the first, the client is turned away (429) until that window ends, with the right token too: otherwise the guess
// that hits would still be told so. Kept in memory: the admin API runs as one process (deploy/k8s: one replica), and
// a restart that forgets the counts gives a guesser one more window, no more. Bounded, so that many addresses cannot
// make it grow without end: the oldest client is forgotten first.

/** More than one: the first wrong token never turns a client away on its own. */
export const AUTH_FAILURES_PER_CLIENT = 10;
export const AUTH_FAILURE_WINDOW_MS = 15 * 60_000;
const MAX_CLIENTS = 10_000;

export interface AuthFailures {
  /** Milliseconds until the client may try again; 0 when it may now. */
  blockedFor(client: string, now: number): number;
  /** Counts a wrong token; true when this one turns the client away. */
  failed(client: string, now: number): boolean;
  /** The client gave the right token: its wrong ones are forgotten. */
  succeeded(client: string): void;
}

export function createAuthFailures(options: { maxClients?: number } = {}): AuthFailures {
  const maxClients = options.maxClients ?? MAX_CLIENTS;
  /** Per client: wrong tokens since `since` (the first of the window). Insertion order: oldest window first. */
  const clients = new Map<string, { count: number; since: number }>();
  const current = (client: string, now: number) => {
    const entry = clients.get(client);
    if (entry && now - entry.since < AUTH_FAILURE_WINDOW_MS) return entry;
    clients.delete(client);
    return undefined;
  };
  return {
    blockedFor(client, now) {
      const entry = current(client, now);
      return entry && entry.count >= AUTH_FAILURES_PER_CLIENT ? entry.since + AUTH_FAILURE_WINDOW_MS - now : 0;
    },
    failed(client, now) {
      const entry = current(client, now);
      if (entry) {
        entry.count++;
        return entry.count === AUTH_FAILURES_PER_CLIENT;
      }
      for (const oldest of clients.keys()) {
        if (clients.size < maxClients) break;
        clients.delete(oldest);
      }
      clients.set(client, { count: 1, since: now });
      return false;
    },
    succeeded(client) {
      clients.delete(client);
    },
  };
}
