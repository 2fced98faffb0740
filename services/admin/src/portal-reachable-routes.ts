// POST /agencies/{id}/addresses/{address}/portal-reachable, GET /portal-reachable-addresses: which agency addresses
// portal users may write new messages to (replies go to whoever wrote, marked or not).
import type { Pool } from '@smgw/db';
import { MESSAGE_ID_PATTERN_ANY_CASE } from '@smgw/envelope';
import { listPortalReachableAddresses, setAddressPortalReachable } from '@smgw/key-directory';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_OPERATOR, operatorHeaders, strictBoolean } from './operator.ts';
import { problem, problemSchema } from './problem.ts';

export interface PortalReachableRouteOptions {
  pool: Pool;
}

const reachableSchema = {
  type: 'object',
  required: ['address', 'agencyId', 'portalReachable'],
  properties: { address: { type: 'string' }, agencyId: { type: 'string' }, portalReachable: { type: 'boolean' } },
} as const;

export async function portalReachableRoutes(api: FastifyInstance, options: PortalReachableRouteOptions) {
  api.post<{
    Params: { id: string; address: string };
    Body: { reachable: boolean };
    Headers: { 'x-smgw-operator'?: string };
  }>(
    '/agencies/:id/addresses/:address/portal-reachable',
    {
      preValidation: strictBoolean('reachable', { required: true }),
      schema: {
        params: {
          type: 'object',
          required: ['id', 'address'],
          properties: {
            id: { type: 'string', pattern: MESSAGE_ID_PATTERN_ANY_CASE },
            address: { type: 'string', minLength: 3, maxLength: 320 },
          },
        },
        headers: operatorHeaders,
        body: {
          type: 'object',
          required: ['reachable'],
          propertyNames: { enum: ['reachable'] },
          properties: { reachable: { type: 'boolean' } },
        },
        response: { 200: reachableSchema, 400: problemSchema, 404: problemSchema },
      },
    },
    async (req, reply) => {
      const agencyId = req.params.id.toUpperCase();
      const result = await setAddressPortalReachable(options.pool, {
        address: req.params.address,
        portalReachable: req.body.reachable,
        agencyId,
      });
      if (result.kind === 'not-found') {
        return reply
          .code(404)
          .send(problem('AGENCY_ADDRESS_NOT_FOUND', `${req.params.address} is not an address of agency ${agencyId}`));
      }
      req.log.info(
        {
          code: 'AGENCY_ADDRESS_PORTAL_REACHABLE_SET',
          agencyId,
          address: result.address,
          portalReachable: result.portalReachable,
          operator: req.headers['x-smgw-operator'] ?? DEFAULT_OPERATOR,
        },
        `portal users ${result.portalReachable ? 'may' : 'may no longer'} write to the address`,
      );
      return { address: result.address, agencyId: result.agencyId, portalReachable: result.portalReachable };
    },
  );

  api.get(
    '/portal-reachable-addresses',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            required: ['addresses'],
            properties: {
              addresses: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['address', 'agencyId', 'agencyName'],
                  properties: {
                    address: { type: 'string' },
                    agencyId: { type: 'string' },
                    agencyName: { type: 'string' },
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => ({ addresses: await listPortalReachableAddresses(options.pool) }),
  );
}
