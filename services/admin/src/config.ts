import { settings } from '@smgw/config';

export const adminSettings = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  adminPort: settings.adminPort,
  adminBind: settings.adminBind,
  adminToken: settings.adminToken,
  logLevel: settings.logLevel,
};
