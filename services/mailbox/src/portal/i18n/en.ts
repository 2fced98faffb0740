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

  // --- asking for the password again (deleting the mailbox, uploading a key) ---
  'reauth.password': 'Your password',
  'reauth.passwordHint': 'For your security: the password you log in with.',
  'reauth.passwordMissing': 'Please enter your password.',
  'reauth.passwordWrong': 'The password is wrong.',

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

  // --- folders (portal-mail) ---
  'folders.inbox.title': 'Inbox',
  'folders.sent.title': 'Sent',
  'folders.trash.title': 'Trash',
  'folders.empty': 'No messages.',
  'folders.caption': '{folder}: {count} messages, {unread} of them unread',
  'folders.captionOne': '{folder}: 1 message, {unread} unread',
  'folders.column.status': 'Status',
  'folders.column.from': 'From',
  'folders.column.to': 'To',
  'folders.column.subject': 'Subject',
  'folders.column.date': 'Date',
  'folders.column.size': 'Size',
  'folders.column.actions': 'Actions',
  'folders.unread': 'Unread',
  'folders.read': 'Read',
  'folders.noSubject': '(no subject)',
  'folders.unknown': '(unknown)',
  'folders.attachmentOne': 'with 1 attachment',
  'folders.attachments': 'with {count} attachments',
  'folders.trash.hint': 'Messages in the trash still use storage until you delete them for good.',
  'folders.trash.emptyAction': 'Empty trash',
  'folders.done.trashed': 'The message was moved to the trash.',
  'folders.done.restored': 'The message was restored.',
  'folders.done.deleted': 'The message was deleted for good.',
  'folders.done.emptied': 'The trash was emptied.',
  // --- end folders ---

  // --- message ---
  'message.title': 'Message',
  'message.headers': 'Header fields',
  'message.from': 'From',
  'message.to': 'To',
  'message.cc': 'Cc',
  'message.date': 'Date',
  'message.received': 'Received',
  'message.noSubject': '(no subject)',
  'message.attachments': 'Attachments',
  'message.attachmentSize': '{type}, {size}',
  'message.body': 'Message text',
  'message.frameTitle': 'Message text (HTML, without active content)',
  'message.remoteBlocked':
    'External content blocked: images and other content from the internet are not loaded, for your protection.',
  'message.textTruncated':
    'The text is very long and is shown shortened. Use “Download original” for the whole message.',
  'message.htmlTooLong':
    'This message is too large or too deeply nested to be shown formatted here. Download the original to read it.',
  'message.unreadable':
    'This message cannot be shown here. You can download the original and open it in an e-mail program.',
  'message.htmlTimedOut':
    'The formatted version of this message could not be prepared in time. Use “Download original” for the whole message.',
  'message.viewTimedOut':
    'This message could not be prepared for display in time. Download the original and open it in an e-mail program.',
  'message.viewBusy':
    'The Messenger is very busy right now. Please reload the page in a minute, or download the original.',
  'message.noText': 'This message has no text.',
  'message.actions': 'Actions',
  'message.reply': 'Reply',
  'message.trash': 'Move to trash',
  'message.restore': 'Restore',
  'message.deleteForever': 'Delete for good',
  'message.downloadUnavailable.title': 'Attachment not available',
  'message.downloadUnavailable.back': 'Back to the message',
  'message.downloadTimedOut':
    'This attachment could not be read from the message in time. Download the original and open it in an e-mail program: it holds every attachment.',
  'message.downloadOriginal': 'Download original (.eml)',
  'message.back': 'Back to: {folder}',
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
  'compose.reply.quoteTimedOut':
    'The original message could not be read in time to quote it: your reply starts without a quote.',
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
  'compose.rateLimited':
    'Too many messages sent in a short time. Please wait {minutes} minutes, then send this message again.',
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
  'keys.title': 'Your own key',
  'keys.intro':
    'Do you have an S/MIME certificate or an OpenPGP key? Upload it here: messages from public agencies are then delivered to you encrypted by e-mail instead of into this mailbox.',
  'keys.status.title': 'How messages reach you',
  'keys.status.certificate':
    'From now on, messages to you are encrypted with your certificate and delivered by e-mail, no longer into this mailbox.',
  'keys.status.pgp-approved':
    'From now on, messages to you are encrypted with your OpenPGP key and delivered by e-mail, no longer into this mailbox.',
  'keys.status.pgp-pending':
    'Your OpenPGP key is waiting for the operators to approve it. Until then, messages to you keep arriving in this mailbox.',
  'keys.status.portal': 'No key is on record for your address: messages to you arrive in this mailbox.',
  'keys.added.zertifikat': 'Your certificate was checked and taken.',
  'keys.added.pgpUpdated': 'Your OpenPGP key was updated with the newer copy you uploaded.',
  'keys.added.pgp': 'Your OpenPGP key was stored and is waiting for approval.',
  'keys.certificates': 'Your certificates',
  'keys.certificate.line': '{subject}, valid until {notAfter}',
  'keys.pgpKeys': 'Your OpenPGP keys',
  'keys.pgp.line': '{fingerprint} ({state})',
  'keys.pgp.state.pending': 'waiting for approval',
  'keys.pgp.state.approved': 'approved',
  'keys.pgp.state.unusable': 'expired or revoked: not used',
  'keys.upload.title': 'Upload a key',
  'keys.upload.label': 'Certificate or OpenPGP public key',
  'keys.upload.hint':
    'An S/MIME certificate as a PEM or DER file (.pem, .crt, .cer, .der), with intermediate certificates if you like; or an OpenPGP public key (.asc). At most {maxKb} KB. Never upload your private key.',
  'keys.upload.submit': 'Upload',
  'keys.error.empty': 'Please choose a file.',
  'keys.error.tooLarge': 'The file is too large (at most {maxKb} KB).',
  'keys.error.unreadable': 'The file is neither a readable certificate nor an OpenPGP public key.',
  'keys.error.certificateAddress': 'The certificate is not issued for your e-mail address.',
  'keys.error.certificateInvalid':
    'The certificate could not be verified: it is not from a recognised certification authority, has expired or been revoked, or is not meant for e-mail encryption.',
  'keys.error.certificateWithdrawn':
    'This certificate was withdrawn by the portal operators and is no longer used. Please upload a new certificate.',
  'keys.error.pgpUnreadable': 'The OpenPGP key cannot be read. Please upload exactly one public key.',
  'keys.error.pgpUnusable': 'The OpenPGP key has expired, been revoked or cannot encrypt.',
  'keys.error.pgpBeyondLimits':
    'The OpenPGP key holds too many user IDs, subkeys or signatures (at most {userIds} user IDs, {subkeys} subkeys and {selfSignatures} signatures by the key itself). Please upload it without the parts no longer needed, e.g. with "gpg --export --export-options export-minimal".',
  'keys.error.pgpAddress': 'The OpenPGP key does not hold your e-mail address as a user ID.',
  'keys.error.heldForAnotherAddress':
    'This key is already on record for another e-mail address and is not used for yours. Please upload a key of your own, or contact the portal operators.',
  // --- end keys ---

  // --- account sections ---
  'account.download.heading': 'Download all messages',
  'account.download.text':
    'A ZIP file with all {count} messages from Inbox, Sent and Trash, one .eml file each, which any e-mail program can open.',
  'account.download.link': 'Download ZIP file',
  'account.delete.heading': 'Delete mailbox',
  'account.delete.text': 'Deletes the mailbox with all messages for good. None of it can be restored, not even by us.',
  'account.delete.link': 'Delete mailbox …',
  'account.delete.title': 'Delete the mailbox for good',
  'account.delete.warning':
    'All {count} messages in Inbox, Sent and Trash are deleted at once and for good, and you are logged out on every device. A certificate or OpenPGP key you added under “Your own key” is deleted too. Download first what you want to keep.',
  'account.delete.address': 'Your e-mail address, to confirm',
  'account.delete.addressHint': 'Type {address}.',
  'account.delete.addressWrong': 'The address does not match this mailbox.',
  'account.delete.confirm': 'I want to delete the mailbox with all messages for good.',
  'account.delete.confirmMissing': 'Please confirm that the mailbox is to be deleted.',
  'account.delete.submit': 'Delete the mailbox for good',
  'account.delete.cancel': 'Cancel, back to the account',
  'account.delete.done.title': 'Mailbox deleted',
  'account.delete.done.text':
    'Your mailbox and all messages are deleted, and you are logged out. If an agency writes to you again, you will get a new activation link.',
  // --- end account sections ---

  // --- registration ---
  'registration.title': 'Set up a secure mailbox',
  'registration.intro':
    'Public agencies send you confidential messages in a secure mailbox when no encryption key is on record for your address. You can set up this mailbox beforehand: enter your e-mail address. You receive a link and then, in a second e-mail, a PIN.',
  'registration.address': 'E-mail address',
  'registration.addressHint': 'We send the link and the PIN to this address.',
  'registration.submit': 'Request mailbox',
  'registration.addressInvalid': 'Please enter a valid e-mail address.',
  'registration.agencyDomain':
    'This address belongs to a connected public agency. Agency addresses get no mailbox in the Messenger: messages to them are delivered directly and encrypted by e-mail.',
  'registration.agencyHint': 'Do you represent a public agency?',
  'registration.sent.title': 'Request received',
  'registration.sent.text':
    'If this address can get a mailbox, an e-mail to it is on its way. It tells you what to do next.',
  'registration.sent.next':
    'A new link comes with a PIN in a second e-mail, a few minutes later. If you already have a mailbox, the e-mail explains how to log in.',
  // --- end registration ---

  // --- agency registration ---
  'agencyRegistration.title': 'Register an agency',
  'agencyRegistration.intro':
    'Register your public agency for the mail gateway. The operators check your details and will contact you; until then nothing changes for your e-mail. You get an e-mail with the next steps and a checklist at once.',
  'agencyRegistration.agencyName': 'Name of the agency',
  'agencyRegistration.contactName': 'Contact person',
  'agencyRegistration.contactEmail': "Contact person's e-mail address",
  'agencyRegistration.contactEmailHint': 'We send the next steps to this address.',
  'agencyRegistration.contactPhone': 'Phone',
  'agencyRegistration.optional': 'Optional.',
  'agencyRegistration.domains': "The agency's domains",
  'agencyRegistration.domainsHint': 'One domain per line, e.g. city-example.org (at most 20).',
  'agencyRegistration.note': 'Note',
  'agencyRegistration.submit': 'Send registration',
  'agencyRegistration.error.agencyName': "Please give the agency's name (2 to 200 characters, one line).",
  'agencyRegistration.error.contactName': "Please give the contact person's name (2 to 200 characters, one line).",
  'agencyRegistration.error.contactEmail': 'Please give a valid e-mail address.',
  'agencyRegistration.error.contactPhone':
    'Please give the phone number with digits, spaces and + ( ) / . - only, or leave the field empty.',
  'agencyRegistration.error.domainsMissing': 'Please give at least one domain.',
  'agencyRegistration.error.domainsTooMany': 'Please give at most {max} domains.',
  'agencyRegistration.error.domainInvalid':
    '"{domain}" is not a domain. Please give domains such as city-example.org only, one per line.',
  'agencyRegistration.error.note': 'The note may have at most {max} characters.',
  'agencyRegistration.sent.title': 'Registration received',
  'agencyRegistration.sent.text':
    'Thank you. Your registration (reference {id}) is waiting for the operators to check it. An e-mail with the next steps is on its way to {email}.',
  'agencyRegistration.sent.nextTitle': 'What happens next',
  'agencyRegistration.sent.step1': 'The operators check that the domains belong to your agency and contact you.',
  'agencyRegistration.sent.step2':
    "You prepare certificates, trust anchors and your mail server's settings (checklist in the e-mail).",
  'agencyRegistration.sent.step3': "Once connected, your agency's messages pass the gateway encrypted.",
  // --- end agency registration ---
};
