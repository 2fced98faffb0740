// Placeholder of the inbox until the folder pages land (their module replaces this one in PORTAL_PAGES).
import type { PortalPage } from '../context.ts';

export const folderPlaceholderPages: PortalPage = async (app, ctx) => {
  app.get('/postfach/eingang', { config: { requireLogin: true } }, async (req, reply) =>
    ctx.render(req, reply, 'folders/inbox', { title: ctx.t(req)('folders.inbox.title') }),
  );
};
