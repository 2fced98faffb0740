// The nemeses: faults injected while the load runs, at points of the run drawn from the seed (a share of the
// messages accepted so far, so a slow machine sees the same sequence). Each one is a plain function of the running
// gateway and the run's own servers; what it did is logged with its times, for the table and for naming the cause
// of a duplicate.
import { setTimeout as sleep } from 'node:timers/promises';
import type { PrivateServers, ServiceProcess, TestGateway } from '@smgw/testing';

import type { Random } from './random.ts';

export const NEMESIS_KINDS = [
  'kill-9',
  'sigterm',
  'rabbitmq-restart',
  'postgres-restart',
  'redis-restart',
  'clamd-down',
  'relay-4xx',
  'rabbitmq-alarm',
] as const;
export type NemesisKind = (typeof NEMESIS_KINDS)[number];

/** Services a kill -9 may hit (ingest has one replica: its listeners are on fixed ports). */
export const KILLABLE = ['ingest', 'scan', 'encrypt', 'deliver', 'mailbox'] as const;
/** Queue workers a SIGTERM under load is sent to. */
export const WORKERS = ['scan', 'encrypt', 'deliver', 'mailbox'] as const;

export interface NemesisPlan {
  kind: NemesisKind;
  /** Starts once this share of the messages got a 250. */
  atShare: number;
  /** Seconds a "for a while" fault lasts (clamd down, relay 4xx, alarm). */
  holdSeconds: number;
}

export interface NemesisEvent {
  kind: NemesisKind;
  /** What exactly: the replica, the alarm… */
  target: string;
  /** Epoch milliseconds. */
  startedAt: number;
  endedAt: number;
  /** 250s given when it started. */
  atAccepted: number;
  /** A broken promise seen by the nemesis itself (a worker that did not stop within its grace period). */
  violation?: string;
}

export interface NemesisWorld {
  gateway: TestGateway;
  servers: PrivateServers;
  random: Random;
  /** SIGTERM grace period (Kubernetes' terminationGracePeriodSeconds of the workers). */
  graceMs: number;
  /** Processes a nemesis is stopping and starting right now (the supervisor leaves them alone). */
  busy: Set<string>;
}

/**
 * The sequence of a run: every kind in `kinds` once, then `extraKills` more kill -9s, at shares of the load drawn
 * between 5 % and 90 %, in order.
 */
export function planNemeses(random: Random, kinds: readonly NemesisKind[], extraKills: number): NemesisPlan[] {
  const all = [...kinds, ...Array.from({ length: extraKills }, () => 'kill-9' as const)];
  return all
    .map((kind) => ({ kind, atShare: 0.05 + random.next() * 0.85, holdSeconds: random.int(5, 15) }))
    .sort((a, b) => a.atShare - b.atShare);
}

const instancesOf = (gateway: TestGateway, services: readonly string[]) =>
  Object.values(gateway.services).filter((s) => services.includes(s.service));

/** Runs one nemesis to its end (the fault is over and what it stopped runs again). */
export async function unleash(plan: NemesisPlan, world: NemesisWorld, atAccepted: number): Promise<NemesisEvent> {
  const { gateway, servers, random } = world;
  const startedAt = Date.now();
  const done = (target: string, violation?: string): NemesisEvent => ({
    kind: plan.kind,
    target,
    startedAt,
    endedAt: Date.now(),
    atAccepted,
    ...(violation ? { violation } : {}),
  });
  const hold = () => sleep(plan.holdSeconds * 1000);
  switch (plan.kind) {
    case 'kill-9': {
      const victim: ServiceProcess = random.pick(instancesOf(gateway, KILLABLE));
      world.busy.add(victim.name);
      await victim.crash();
      await victim.start().finally(() => world.busy.delete(victim.name));
      return done(victim.name);
    }
    case 'sigterm': {
      const victim = random.pick(instancesOf(gateway, WORKERS));
      world.busy.add(victim.name);
      const stopped = await victim.stop(world.graceMs);
      await victim.start().finally(() => world.busy.delete(victim.name));
      return done(
        `${victim.name} (${stopped.exitedByItself ? `exit ${stopped.code}` : 'killed after the grace period'})`,
        stopped.exitedByItself && stopped.code === 0
          ? undefined
          : `${victim.name} did not stop cleanly within ${world.graceMs / 1000} s of SIGTERM`,
      );
    }
    case 'rabbitmq-restart':
      await servers.rabbitmq.restart();
      return done('RabbitMQ');
    case 'postgres-restart':
      await servers.postgres.restart();
      return done('PostgreSQL (immediate)');
    case 'redis-restart':
      await servers.redis.restart();
      return done('Redis');
    case 'clamd-down':
      await servers.clamd.stop();
      await hold();
      await servers.clamd.start();
      return done(`clamd ${plan.holdSeconds} s`);
    case 'relay-4xx': {
      // Both next hops refuse every recipient with a temporary error, then take mail again.
      const refuse = () => ({ code: 451, message: '4.3.0 chaos: try again later' });
      gateway.relay.rejectRecipient = refuse;
      gateway.smarthost.rejectRecipient = refuse;
      await hold();
      gateway.relay.rejectRecipient = undefined;
      gateway.smarthost.rejectRecipient = undefined;
      return done(`relay and smarthost 451 ${plan.holdSeconds} s`);
    }
    case 'rabbitmq-alarm': {
      // A memory or disk alarm blocks every publishing connection until it clears.
      if (random.next() < 0.5) {
        await servers.rabbitmq.ctl('set_vm_memory_high_watermark', '0.0000001');
        await hold();
        await servers.rabbitmq.ctl('set_vm_memory_high_watermark', '0.4');
        return done(`memory alarm ${plan.holdSeconds} s`);
      }
      await servers.rabbitmq.ctl('set_disk_free_limit', '100000GB');
      await hold();
      await servers.rabbitmq.ctl('set_disk_free_limit', '50MB');
      return done(`disk alarm ${plan.holdSeconds} s`);
    }
  }
}

export function describeNemesis(e: NemesisEvent): string {
  return `${e.kind} ${e.target} at ${e.atAccepted} accepted`;
}
