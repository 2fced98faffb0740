// Types for the parts of mx-connect 2.0 (zone-eu/mx-connect, no types of its own) that deliver uses.
declare module 'mx-connect' {
  import type { Socket } from 'node:net';

  namespace mxConnect {
    interface MxConnectOptions {
      /** Domain, e-mail address or IP literal. */
      target: string;
      port?: number;
      /** Per MX host, in ms. */
      maxConnectTime?: number;
      localHostname?: string;
      dnsOptions?: {
        blockLocalAddresses?: boolean;
        blockReservedNetworks?: boolean;
        ignoreIPv6?: boolean;
        resolveRecords?: (domain: string, type: 'MX' | 'A' | 'AAAA' | 'TXT') => unknown;
      };
      /** Runs before each connect with the address about to be connected to; an error ends the attempt (no further host). */
      connectHook?: (
        delivery: { domain: string },
        options: { host: string; port: number },
        callback: (err?: Error) => void,
      ) => void;
      mtaSts?: {
        enabled?: boolean;
        logger?: (entry: Record<string, unknown>) => void;
        cache?: { get(domain: string): unknown; set(domain: string, policy: unknown): unknown };
      };
    }

    interface MxConnection {
      socket: Socket;
      /** The MX host name (or the address when there was none). */
      hostname: string;
      /** The IP address connected to. */
      host: string;
      port: number;
      policyMatch?: { valid: boolean; mode?: string; testing?: boolean };
    }

    /** Errors carry where they come from and whether trying again can help. */
    interface MxConnectError extends Error {
      code?: string;
      category?: 'dns' | 'network' | 'policy' | 'dane';
      temporary?: boolean;
      response?: string;
    }
  }

  function mxConnect(options: mxConnect.MxConnectOptions): Promise<mxConnect.MxConnection>;
  export = mxConnect;
}
