// Every text of the portal, English: the same keys as de.ts (a missing or extra key fails the type check).
import type { MessageKey } from './de.ts';

export const en: Record<MessageKey, string> = {
  // --- layout and common ---
  'product.name': 'SecureMail Messenger',
  'layout.skip': 'Skip to content',
  'layout.nav.label': 'Mailbox',
  'nav.inbox': 'Inbox',
  'nav.sent': 'Sent',
  'nav.trash': 'Trash',
  'nav.compose': 'Write',
  'nav.keys': 'Keys',
  'nav.account': 'Account',
  'nav.logout': 'Log out',
  'layout.language': 'Language',
  'layout.language.switch': 'Deutsch',
  'layout.footer': 'Confidential messages from public authorities, stored encrypted.',
  'layout.loggedInAs': 'Logged in as {address}',
  'quota.label': 'Storage',
  'quota.text': '{used} MB of {quota} MB used',
  'form.required': 'required',
  'form.errorSummary': 'Please correct the marked fields.',

  // --- errors ---
  'error.404.title': 'Page not found',
  'error.404.text': 'This page does not exist. Check the address or go to the start page.',
  'error.429.title': 'Too many attempts',
  'error.429.text':
    'For your security, further attempts are blocked for a while. Please wait {minutes} minutes and try again.',
  'error.500.title': 'Something went wrong',
  'error.500.text': 'Your request could not be handled. Please try again later.',
  'error.csrf.title': 'Form expired',
  'error.csrf.text': 'The form was no longer valid (security check). Please reload the page and send it again.',
  'error.400.title': 'Bad request',
  'error.400.text': 'The request could not be understood.',
  'error.home': 'Go to the start page',

  // --- login (portal-core) ---
  'login.title': 'Log in',
  'login.intro': 'Log in with your e-mail address and your password.',
  'login.address': 'E-mail address',
  'login.password': 'Password',
  'login.submit': 'Log in',
  'login.failed': 'The e-mail address or the password is wrong, or the mailbox is not activated.',
  'login.lockedOut': 'Too many wrong login attempts. Logging in is blocked for {minutes} minutes.',
  'login.forgot': 'Forgot your password or link expired? Request a new activation link',
  'login.mailboxLocked': 'This mailbox is locked. Please contact the authority that wrote to you.',
  'login.loggedOut': 'You are logged out.',
  'login.sessionEnded': 'Your session has ended. Please log in again.',

  // --- activation (portal-core) ---
  'activation.title': 'Activate your mailbox',
  'activation.intro': 'Enter the PIN you received by e-mail (or from the sender) and choose a password.',
  'activation.pin': 'PIN (8 digits)',
  'activation.password': 'New password',
  'activation.passwordHint': 'At least 12 characters. A sentence of several words is safe and easy to remember.',
  'activation.passwordRepeat': 'Repeat the new password',
  'activation.submit': 'Activate',
  'activation.pinWrong': 'The PIN is wrong. {left} attempts left.',
  'activation.pinFormat': 'The PIN has 8 digits.',
  'activation.passwordMismatch': 'The two passwords do not match.',
  'activation.passwordShort': 'The password must be at least {min} characters long.',
  'activation.passwordWeak': 'This password is too easy to guess. Choose a longer or less common one.',
  'activation.dead.title': 'Link no longer valid',
  'activation.dead.text':
    'This activation link has expired, has been used already, or was blocked after too many wrong PINs.',
  'activation.dead.action': 'Request a new activation link',

  // --- re-activation (portal-core) ---
  'reactivation.title': 'Request a new activation link',
  'reactivation.intro':
    'Enter your e-mail address. If there is a mailbox for it, we send a new link and then a PIN. Every earlier link and PIN stops working.',
  'reactivation.address': 'E-mail address',
  'reactivation.submit': 'Request link',
  'reactivation.sent.title': 'Request received',
  'reactivation.sent.text':
    'If there is a mailbox for this address, you will shortly receive an e-mail with a link and, a few minutes later, a second one with the PIN.',
  'reactivation.addressInvalid': 'Please enter a valid e-mail address.',

  // --- account (portal-core: /konto; the account helper adds its sections' keys here) ---
  'account.title': 'Account',
  'account.address': 'Mailbox: {address}',
  'account.logoutEverywhere.heading': 'Log out everywhere',
  'account.logoutEverywhere.text': 'Ends every session of this mailbox on all devices, this one too.',
  'account.logoutEverywhere.submit': 'Log out everywhere',

  // --- folders (placeholder by portal-core; the folders helper replaces it) ---
  'folders.inbox.title': 'Inbox',
  'folders.empty': 'No messages.',
  // --- end folders ---

  // --- message ---
  // --- end message ---

  // --- compose ---
  'compose.title': 'Write a message',
  'compose.intro':
    'You can write to the agencies listed here. Your message is checked for malware and passed to the agency over a secure channel.',
  'compose.noRecipients':
    'No agency is open for new messages at the moment. You can still reply to messages in your inbox.',
  'compose.to': 'To',
  'compose.to.choose': 'Please choose',
  'compose.subject': 'Subject',
  'compose.text': 'Message',
  'compose.attachments': 'Attachments (optional)',
  'compose.attachments.hint':
    'At most {count} files, together with the text at most {maxMb} MB. The sent message is kept in the Sent folder and counts towards your storage.',
  'compose.submit': 'Send',
  'compose.reattach': 'If you had chosen attachments, please choose them again.',
  'compose.failed':
    'Your message could not be sent because of a technical fault. Please send it again; it will not be sent twice.',
  'compose.sent.title': 'Sent',
  'compose.sent.text': 'Your message has been sent. A copy is in your Sent folder.',
  'compose.sent.toSent': 'Go to the Sent folder',
  'compose.reply.title': 'Reply',
  'compose.reply.to': 'To (sender of the message)',
  'compose.reply.quoteIntro': 'On {date}, {from} wrote:',
  'compose.reply.refused.title': 'Reply not possible',
  'compose.reply.refused.text':
    'Through the portal you can only reply to agencies. This message does not come from an agency address, so it cannot be answered here.',
  'compose.back': 'Back to the inbox',
  'compose.error.SUBJECT_MISSING': 'Please enter a subject.',
  'compose.error.SUBJECT_LINE_BREAK': 'The subject must be a single line.',
  'compose.error.SUBJECT_TOO_LONG': 'The subject may be at most 250 characters long.',
  'compose.error.TEXT_TOO_LONG': 'The text is too long.',
  'compose.error.MESSAGE_EMPTY': 'Please write a text or add an attachment.',
  'compose.error.TOO_MANY_ATTACHMENTS': 'Too many attachments.',
  'compose.error.UPLOAD_TOO_LARGE': 'Text and attachments together are too large (at most {maxMb} MB).',
  'compose.error.QUOTA_EXCEEDED':
    'Your storage is too full for this message. Please delete messages and empty the trash.',
  'compose.error.NO_RECIPIENT': 'Please choose a recipient.',
  'compose.error.TOO_MANY_RECIPIENTS': 'Too many recipients.',
  'compose.error.RECIPIENT_NOT_REACHABLE': 'You cannot write to this address through the portal.',
  'compose.error.REPLY_SENDER_NOT_AGENCY': 'Through the portal you can only reply to agencies.',
  'compose.error.REPLY_NO_SENDER': 'This message has no single sender.',
  'compose.error.REPLY_ORIGINAL_NOT_FOUND': 'The message you are replying to no longer exists.',
  'compose.error.MAILBOX_NOT_ACTIVE': 'This mailbox cannot send.',
  'compose.error.DRAFT_TAKEN': 'The form has expired. Please open it again.',
  // --- end compose ---

  // --- keys ---
  // --- end keys ---

  // --- account sections ---
  // --- end account sections ---

  // --- registration ---
  // --- end registration ---

  // --- agency registration ---
  // --- end agency registration ---
};
