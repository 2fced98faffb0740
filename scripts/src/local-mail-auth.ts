// Whether `./smgw up` checks SPF, DKIM and DMARC of MX mail (SMGW_MAIL_AUTH). Off by default locally: every test mail
// would ask the internet's DNS (README "Mail from the internet"). An operator who names DNS servers to ask
// (SMGW_DNS_RESOLVERS: a local stub or resolver) wants them asked, as SPEC.md's inbound promises (Authentication-Results,
// DMARC p=reject refused) say: then it is on. Set explicitly, SMGW_MAIL_AUTH is what it says.
export function localMailAuth(env: NodeJS.ProcessEnv): string {
  if (env.SMGW_MAIL_AUTH) return env.SMGW_MAIL_AUTH;
  return env.SMGW_DNS_RESOLVERS?.trim() ? 'on' : 'off';
}
