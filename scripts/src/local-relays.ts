// Where `./smgw up` sends the mail the gateway delivers. A local SMTP sink stands in for the agencies' mail server
// (SMGW_INTERNAL_RELAY) and another for the outside world (SMGW_SMARTHOST), each only while its setting is left at
// the local default: an operator who points a setting at a real relay gets no sink for it.

export interface LocalSink {
  /** Folder under .smgw/mail/ the sink writes to; the service is called `sink-<name>`. */
  name: 'agency' | 'outside';
  /** The relay setting the sink stands in for. */
  setting: 'SMGW_INTERNAL_RELAY' | 'SMGW_SMARTHOST';
  port: number;
  healthPort: number;
}

export interface LocalRelayPlan {
  /** The relay settings the gateway's services run with. */
  relayEnv: { SMGW_INTERNAL_RELAY: string; SMGW_SMARTHOST: string };
  /** The sinks to start, each decided on its own. */
  sinks: LocalSink[];
}

/**
 * SMGW_INTERNAL_RELAY unset or empty (deliver's own default is the sink's address too), or set to the sink's
 * address: the agency sink. SMGW_SMARTHOST unset, or set to the sink's address: the outside sink; set empty, it
 * means what it means to deliver (no smarthost: MX lookup), so no sink either.
 */
export function planLocalRelays(env: NodeJS.ProcessEnv): LocalRelayPlan {
  const agency = localSink(
    'agency',
    Number(env.SMGW_SINK_AGENCY_PORT ?? 2526),
    Number(env.SMGW_SINK_AGENCY_HEALTH_PORT ?? 9109),
  );
  const outside = localSink(
    'outside',
    Number(env.SMGW_SINK_OUTSIDE_PORT ?? 2527),
    Number(env.SMGW_SINK_OUTSIDE_HEALTH_PORT ?? 9110),
  );
  const relay = env.SMGW_INTERNAL_RELAY || sinkAddress(agency);
  const smarthost = env.SMGW_SMARTHOST ?? sinkAddress(outside);
  return {
    relayEnv: { SMGW_INTERNAL_RELAY: relay, SMGW_SMARTHOST: smarthost },
    sinks: [
      ...(relay === sinkAddress(agency) ? [agency] : []),
      ...(smarthost === sinkAddress(outside) ? [outside] : []),
    ],
  };
}

export function localSink(name: LocalSink['name'], port: number, healthPort: number): LocalSink {
  return { name, setting: name === 'agency' ? 'SMGW_INTERNAL_RELAY' : 'SMGW_SMARTHOST', port, healthPort };
}

export function sinkAddress(sink: LocalSink): string {
  return `127.0.0.1:${sink.port}`;
}

/** Said once when a sink's port is taken, instead of retrying a sink that cannot start. */
export function sinkPortBusyNotice(sink: LocalSink): string {
  const what = sink.name === 'agency' ? "agencies' mail server" : 'smarthost';
  return (
    `port ${sink.port} is in use by another program; the local ${sink.name} sink is not started, so mail for the ` +
    `${sink.name === 'agency' ? 'agencies' : 'outside'} goes to whatever listens on ${sinkAddress(sink)}. ` +
    `Set ${sink.setting} to your ${what} or free the port.`
  );
}
