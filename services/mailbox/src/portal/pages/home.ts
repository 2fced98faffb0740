// The start: `/` goes to the inbox when logged in, else to the login page; `/postfach` to the inbox.
import type { PortalPage } from '../context.ts';

export const homePages: PortalPage = async (app) => {
  app.get('/', async (req, reply) => reply.redirect(req.portalLogin ? '/postfach/eingang' : '/anmelden', 303));
  app.get('/postfach', async (_req, reply) => reply.redirect('/postfach/eingang', 303));
};
