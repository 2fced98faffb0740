// Every text of the portal, German (the reference: en.ts must have the same keys, the type checker sees to it).
// Placeholders are {name}; t() fills them in, and the views escape the result. Each page group has its own
// section below (keys prefixed with the group): add keys inside your group's section only, so merges stay clean.
export const de = {
  // --- layout and common ---
  'product.name': 'SecureMail Messenger',
  'layout.skip': 'Zum Inhalt springen',
  'layout.nav.label': 'Postfach',
  'nav.inbox': 'Posteingang',
  'nav.sent': 'Gesendet',
  'nav.trash': 'Papierkorb',
  'nav.compose': 'Schreiben',
  'nav.keys': 'Schlüssel',
  'nav.account': 'Konto',
  'nav.logout': 'Abmelden',
  'layout.language': 'Sprache',
  'layout.language.switch': 'English',
  'layout.footer': 'Vertrauliche Nachrichten von Behörden, verschlüsselt gespeichert.',
  'layout.loggedInAs': 'Angemeldet als {address}',
  'quota.label': 'Speicher',
  'quota.text': '{used} MB von {quota} MB belegt',
  'form.required': 'Pflichtfeld',
  'form.errorSummary': 'Bitte korrigieren Sie die markierten Angaben.',

  // --- errors ---
  'error.404.title': 'Seite nicht gefunden',
  'error.404.text': 'Diese Seite gibt es nicht. Prüfen Sie die Adresse oder gehen Sie zur Startseite.',
  'error.429.title': 'Zu viele Versuche',
  'error.429.text':
    'Aus Sicherheitsgründen sind weitere Versuche vorübergehend gesperrt. Bitte warten Sie {minutes} Minuten und versuchen Sie es dann erneut.',
  'error.500.title': 'Ein Fehler ist aufgetreten',
  'error.500.text': 'Ihre Anfrage konnte nicht bearbeitet werden. Bitte versuchen Sie es später erneut.',
  'error.csrf.title': 'Formular abgelaufen',
  'error.csrf.text':
    'Das Formular war nicht mehr gültig (Sicherheitsprüfung). Bitte laden Sie die Seite neu und senden Sie es erneut.',
  'error.400.title': 'Ungültige Anfrage',
  'error.400.text': 'Die Anfrage war nicht verständlich.',
  'error.home': 'Zur Startseite',

  // --- login (portal-core) ---
  'login.title': 'Anmelden',
  'login.intro': 'Melden Sie sich mit Ihrer E-Mail-Adresse und Ihrem Passwort an.',
  'login.address': 'E-Mail-Adresse',
  'login.password': 'Passwort',
  'login.submit': 'Anmelden',
  'login.failed': 'E-Mail-Adresse oder Passwort ist falsch, oder das Postfach ist nicht aktiviert.',
  'login.lockedOut': 'Zu viele falsche Anmeldeversuche. Die Anmeldung ist für {minutes} Minuten gesperrt.',
  'login.forgot': 'Passwort vergessen oder Link abgelaufen? Neuen Aktivierungslink anfordern',
  'login.mailboxLocked':
    'Dieses Postfach ist gesperrt. Bitte wenden Sie sich an die Behörde, die Ihnen geschrieben hat.',
  'login.loggedOut': 'Sie sind abgemeldet.',
  'login.sessionEnded': 'Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.',

  // --- asking for the password again (deleting the mailbox, uploading a key) ---
  'reauth.password': 'Ihr Passwort',
  'reauth.passwordHint': 'Zur Sicherheit: das Passwort, mit dem Sie sich anmelden.',
  'reauth.passwordMissing': 'Bitte geben Sie Ihr Passwort ein.',
  'reauth.passwordWrong': 'Das Passwort ist falsch.',

  // --- activation (portal-core) ---
  'activation.title': 'Postfach aktivieren',
  'activation.intro':
    'Geben Sie die PIN ein, die Sie per E-Mail (oder vom Absender) erhalten haben, und wählen Sie ein Passwort.',
  'activation.pin': 'PIN (8 Ziffern)',
  'activation.password': 'Neues Passwort',
  'activation.passwordHint': 'Mindestens 12 Zeichen. Ein Satz aus mehreren Wörtern ist sicher und gut zu merken.',
  'activation.passwordRepeat': 'Neues Passwort wiederholen',
  'activation.submit': 'Aktivieren',
  'activation.pinWrong': 'Die PIN ist falsch. Noch {left} Versuche.',
  'activation.pinFormat': 'Die PIN besteht aus 8 Ziffern.',
  'activation.passwordMismatch': 'Die beiden Passwörter stimmen nicht überein.',
  'activation.passwordShort': 'Das Passwort muss mindestens {min} Zeichen lang sein.',
  'activation.passwordWeak': 'Dieses Passwort ist zu leicht zu erraten. Wählen Sie ein längeres oder ungewöhnlicheres.',
  'activation.dead.title': 'Link nicht mehr gültig',
  'activation.dead.text':
    'Dieser Aktivierungslink ist abgelaufen, wurde schon benutzt oder durch zu viele falsche PINs gesperrt.',
  'activation.dead.action': 'Neuen Aktivierungslink anfordern',

  // --- re-activation (portal-core) ---
  'reactivation.title': 'Neuen Aktivierungslink anfordern',
  'reactivation.intro':
    'Geben Sie Ihre E-Mail-Adresse ein. Wenn es dazu ein Postfach gibt, senden wir einen neuen Link und danach eine PIN. Alle früheren Links und PINs werden ungültig.',
  'reactivation.address': 'E-Mail-Adresse',
  'reactivation.submit': 'Link anfordern',
  'reactivation.sent.title': 'Anfrage erhalten',
  'reactivation.sent.text':
    'Wenn es zu dieser Adresse ein Postfach gibt, erhalten Sie in Kürze eine E-Mail mit einem Link und einige Minuten später eine zweite mit der PIN.',
  'reactivation.addressInvalid': 'Bitte geben Sie eine gültige E-Mail-Adresse ein.',

  // --- account (portal-core: /konto; the account helper adds its sections' keys here) ---
  'account.title': 'Konto',
  'account.address': 'Postfach: {address}',
  'account.logoutEverywhere.heading': 'Überall abmelden',
  'account.logoutEverywhere.text': 'Beendet alle Sitzungen dieses Postfachs auf allen Geräten, auch diese.',
  'account.logoutEverywhere.submit': 'Überall abmelden',

  // --- folders (portal-mail) ---
  'folders.inbox.title': 'Posteingang',
  'folders.sent.title': 'Gesendet',
  'folders.trash.title': 'Papierkorb',
  'folders.empty': 'Keine Nachrichten.',
  'folders.caption': '{folder}: {count} Nachrichten, davon {unread} ungelesen',
  'folders.captionOne': '{folder}: 1 Nachricht, {unread} ungelesen',
  'folders.column.status': 'Status',
  'folders.column.from': 'Von',
  'folders.column.to': 'An',
  'folders.column.subject': 'Betreff',
  'folders.column.date': 'Datum',
  'folders.column.size': 'Größe',
  'folders.column.actions': 'Aktionen',
  'folders.unread': 'Ungelesen',
  'folders.read': 'Gelesen',
  'folders.noSubject': '(ohne Betreff)',
  'folders.unknown': '(unbekannt)',
  'folders.attachmentOne': 'mit 1 Anhang',
  'folders.attachments': 'mit {count} Anhängen',
  'folders.trash.hint': 'Nachrichten im Papierkorb belegen weiter Speicher, bis Sie sie endgültig löschen.',
  'folders.trash.emptyAction': 'Papierkorb leeren',
  'folders.done.trashed': 'Die Nachricht wurde in den Papierkorb verschoben.',
  'folders.done.restored': 'Die Nachricht wurde wiederhergestellt.',
  'folders.done.deleted': 'Die Nachricht wurde endgültig gelöscht.',
  'folders.done.emptied': 'Der Papierkorb wurde geleert.',
  // --- end folders ---

  // --- message ---
  'message.title': 'Nachricht',
  'message.headers': 'Kopfzeilen',
  'message.from': 'Von',
  'message.to': 'An',
  'message.cc': 'Kopie',
  'message.date': 'Datum',
  'message.received': 'Eingegangen',
  'message.noSubject': '(ohne Betreff)',
  'message.attachments': 'Anhänge',
  'message.attachmentSize': '{type}, {size}',
  'message.body': 'Nachrichtentext',
  'message.frameTitle': 'Nachrichtentext (HTML, ohne aktive Inhalte)',
  'message.remoteBlocked':
    'Externe Inhalte blockiert: Bilder und andere Inhalte aus dem Internet werden zu Ihrem Schutz nicht geladen.',
  'message.textTruncated':
    'Der Text ist sehr lang und wird gekürzt angezeigt. Die vollständige Nachricht erhalten Sie mit „Original herunterladen“.',
  'message.htmlTooLong':
    'Diese Nachricht ist zu groß oder zu verschachtelt, um sie hier formatiert anzuzeigen. Laden Sie das Original herunter, um sie zu lesen.',
  'message.unreadable':
    'Diese Nachricht kann hier nicht angezeigt werden. Sie können das Original herunterladen und in einem E-Mail-Programm öffnen.',
  'message.htmlTimedOut':
    'Die formatierte Fassung dieser Nachricht konnte nicht rechtzeitig aufbereitet werden. Die vollständige Nachricht erhalten Sie mit „Original herunterladen“.',
  'message.viewTimedOut':
    'Diese Nachricht konnte nicht rechtzeitig zur Anzeige aufbereitet werden. Laden Sie das Original herunter und öffnen Sie es in einem E-Mail-Programm.',
  'message.viewBusy':
    'Der Messenger ist gerade stark ausgelastet. Bitte laden Sie die Seite in einer Minute neu, oder laden Sie das Original herunter.',
  'message.noText': 'Diese Nachricht enthält keinen Text.',
  'message.actions': 'Aktionen',
  'message.reply': 'Antworten',
  'message.trash': 'In den Papierkorb',
  'message.restore': 'Wiederherstellen',
  'message.deleteForever': 'Endgültig löschen',
  'message.downloadUnavailable.title': 'Anhang nicht verfügbar',
  'message.downloadUnavailable.back': 'Zurück zur Nachricht',
  'message.downloadTimedOut':
    'Dieser Anhang konnte nicht rechtzeitig aus der Nachricht gelesen werden. Laden Sie das Original herunter und öffnen Sie es in einem E-Mail-Programm: es enthält alle Anhänge.',
  'message.downloadOriginal': 'Original herunterladen (.eml)',
  'message.back': 'Zurück zu: {folder}',
  // --- end message ---

  // --- compose ---
  'compose.title': 'Nachricht schreiben',
  'compose.intro':
    'Sie können an die hier aufgeführten Behörden schreiben. Ihre Nachricht wird auf Schadsoftware geprüft und auf gesichertem Weg an die Behörde übermittelt.',
  'compose.noRecipients':
    'Derzeit ist keine Behörde für neue Nachrichten freigegeben. Sie können aber auf Nachrichten in Ihrem Posteingang antworten.',
  'compose.to': 'An',
  'compose.to.choose': 'Bitte wählen',
  'compose.subject': 'Betreff',
  'compose.text': 'Nachricht',
  'compose.attachments': 'Anhänge (freiwillig)',
  'compose.attachments.hint':
    'Höchstens {count} Dateien, zusammen mit dem Text höchstens {maxMb} MB. Die gesendete Nachricht wird im Ordner „Gesendet“ gespeichert und zählt zu Ihrem Speicher.',
  'compose.submit': 'Senden',
  'compose.reattach': 'Falls Sie Anhänge gewählt hatten: Bitte wählen Sie sie erneut aus.',
  'compose.failed':
    'Ihre Nachricht konnte wegen einer technischen Störung nicht gesendet werden. Bitte senden Sie sie erneut; sie wird dabei nicht doppelt verschickt.',
  'compose.sent.title': 'Gesendet',
  'compose.sent.text': 'Ihre Nachricht wurde gesendet. Eine Kopie finden Sie im Ordner „Gesendet“.',
  'compose.sent.toSent': 'Zum Ordner „Gesendet“',
  'compose.reply.title': 'Antworten',
  'compose.reply.to': 'An (Absender der Nachricht)',
  'compose.reply.quoteTimedOut':
    'Die ursprüngliche Nachricht konnte nicht rechtzeitig zum Zitieren gelesen werden: Ihre Antwort beginnt ohne Zitat.',
  'compose.reply.quoteIntro': 'Am {date} schrieb {from}:',
  'compose.reply.refused.title': 'Antworten nicht möglich',
  'compose.reply.refused.text':
    'Über das Portal können Sie nur Behörden antworten. Diese Nachricht kommt nicht von einer Behördenadresse und kann deshalb hier nicht beantwortet werden.',
  'compose.back': 'Zurück zum Posteingang',
  'compose.error.SUBJECT_MISSING': 'Bitte geben Sie einen Betreff ein.',
  'compose.error.SUBJECT_LINE_BREAK': 'Der Betreff muss eine einzelne Zeile sein.',
  'compose.error.SUBJECT_TOO_LONG': 'Der Betreff darf höchstens 250 Zeichen lang sein.',
  'compose.error.TEXT_TOO_LONG': 'Der Text ist zu lang.',
  'compose.error.MESSAGE_EMPTY': 'Bitte schreiben Sie einen Text oder fügen Sie einen Anhang hinzu.',
  'compose.error.TOO_MANY_ATTACHMENTS': 'Zu viele Anhänge.',
  'compose.error.UPLOAD_TOO_LARGE': 'Text und Anhänge sind zusammen zu groß (höchstens {maxMb} MB).',
  'compose.rateLimited':
    'Zu viele Nachrichten in kurzer Zeit gesendet. Bitte warten Sie {minutes} Minuten und senden Sie diese Nachricht dann erneut.',
  'compose.error.QUOTA_EXCEEDED':
    'Ihr Speicher reicht für diese Nachricht nicht aus. Bitte löschen Sie Nachrichten und leeren Sie den Papierkorb.',
  'compose.error.NO_RECIPIENT': 'Bitte wählen Sie einen Empfänger.',
  'compose.error.TOO_MANY_RECIPIENTS': 'Zu viele Empfänger.',
  'compose.error.RECIPIENT_NOT_REACHABLE': 'An diese Adresse können Sie über das Portal nicht schreiben.',
  'compose.error.REPLY_SENDER_NOT_AGENCY': 'Über das Portal können Sie nur Behörden antworten.',
  'compose.error.REPLY_NO_SENDER': 'Diese Nachricht hat keinen eindeutigen Absender.',
  'compose.error.REPLY_ORIGINAL_NOT_FOUND': 'Die Nachricht, auf die Sie antworten, gibt es nicht mehr.',
  'compose.error.MAILBOX_NOT_ACTIVE': 'Aus diesem Postfach kann nicht gesendet werden.',
  'compose.error.DRAFT_TAKEN': 'Das Formular ist abgelaufen. Bitte öffnen Sie es neu.',
  // --- end compose ---

  // --- keys ---
  'keys.title': 'Eigener Schlüssel',
  'keys.intro':
    'Haben Sie ein S/MIME-Zertifikat oder einen OpenPGP-Schlüssel? Dann laden Sie ihn hier hoch: Nachrichten von Behörden an Sie werden dann verschlüsselt per E-Mail zugestellt, statt in dieses Postfach.',
  'keys.status.title': 'Wie Nachrichten an Sie zugestellt werden',
  'keys.status.certificate':
    'Nachrichten an Sie werden ab jetzt mit Ihrem Zertifikat verschlüsselt und per E-Mail zugestellt, nicht mehr in dieses Postfach.',
  'keys.status.pgp-approved':
    'Nachrichten an Sie werden ab jetzt mit Ihrem OpenPGP-Schlüssel verschlüsselt und per E-Mail zugestellt, nicht mehr in dieses Postfach.',
  'keys.status.pgp-pending':
    'Ihr OpenPGP-Schlüssel wartet auf die Freigabe durch den Betrieb. Bis dahin kommen Nachrichten an Sie weiter in dieses Postfach.',
  'keys.status.portal': 'Für Ihre Adresse ist kein Schlüssel hinterlegt: Nachrichten an Sie kommen in dieses Postfach.',
  'keys.added.zertifikat': 'Ihr Zertifikat wurde geprüft und übernommen.',
  'keys.added.pgpUpdated': 'Ihr OpenPGP-Schlüssel wurde mit der hochgeladenen neueren Fassung aktualisiert.',
  'keys.added.pgp': 'Ihr OpenPGP-Schlüssel wurde gespeichert und wartet auf die Freigabe.',
  'keys.certificates': 'Ihre Zertifikate',
  'keys.certificate.line': '{subject}, gültig bis {notAfter}',
  'keys.pgpKeys': 'Ihre OpenPGP-Schlüssel',
  'keys.pgp.line': '{fingerprint} ({state})',
  'keys.pgp.state.pending': 'wartet auf Freigabe',
  'keys.pgp.state.approved': 'freigegeben',
  'keys.pgp.state.unusable': 'abgelaufen oder widerrufen: wird nicht verwendet',
  'keys.upload.title': 'Schlüssel hochladen',
  'keys.upload.label': 'Zertifikat oder öffentlicher OpenPGP-Schlüssel',
  'keys.upload.hint':
    'S/MIME-Zertifikat als PEM- oder DER-Datei (.pem, .crt, .cer, .der), gern mit Zwischenzertifikaten; oder öffentlicher OpenPGP-Schlüssel (.asc). Höchstens {maxKb} KB. Laden Sie niemals Ihren privaten Schlüssel hoch.',
  'keys.upload.submit': 'Hochladen',
  'keys.error.empty': 'Bitte wählen Sie eine Datei aus.',
  'keys.error.tooLarge': 'Die Datei ist zu groß (höchstens {maxKb} KB).',
  'keys.error.unreadable': 'Die Datei ist weder ein lesbares Zertifikat noch ein öffentlicher OpenPGP-Schlüssel.',
  'keys.error.certificateAddress': 'Das Zertifikat ist nicht für Ihre E-Mail-Adresse ausgestellt.',
  'keys.error.certificateInvalid':
    'Das Zertifikat konnte nicht geprüft werden: Es stammt nicht von einer anerkannten Zertifizierungsstelle, ist abgelaufen, gesperrt oder nicht für E-Mail-Verschlüsselung bestimmt.',
  'keys.error.certificateWithdrawn':
    'Dieses Zertifikat wurde vom Betrieb des Portals aus dem Gebrauch genommen und wird nicht mehr verwendet. Bitte laden Sie ein neues Zertifikat hoch.',
  'keys.error.pgpUnreadable':
    'Der OpenPGP-Schlüssel ist nicht lesbar. Bitte laden Sie genau einen öffentlichen Schlüssel hoch.',
  'keys.error.pgpUnusable': 'Der OpenPGP-Schlüssel ist abgelaufen, widerrufen oder kann nicht verschlüsseln.',
  'keys.error.pgpBeyondLimits':
    'Der OpenPGP-Schlüssel enthält zu viele Benutzerkennungen, Unterschlüssel oder Signaturen (höchstens {userIds} Benutzerkennungen, {subkeys} Unterschlüssel und {selfSignatures} eigene Signaturen). Bitte laden Sie ihn ohne nicht mehr benötigte Teile hoch, etwa mit „gpg --export --export-options export-minimal“.',
  'keys.error.pgpAddress': 'Der OpenPGP-Schlüssel enthält Ihre E-Mail-Adresse nicht als Benutzerkennung.',
  'keys.error.heldForAnotherAddress':
    'Dieser Schlüssel ist bereits für eine andere E-Mail-Adresse hinterlegt und wird für Ihre nicht verwendet. Bitte laden Sie einen Schlüssel hoch, der nur Ihnen gehört, oder wenden Sie sich an den Betrieb des Portals.',
  // --- end keys ---

  // --- account sections ---
  'account.download.heading': 'Alle Nachrichten herunterladen',
  'account.download.text':
    'Eine ZIP-Datei mit allen {count} Nachrichten aus Posteingang, Gesendet und Papierkorb, je eine .eml-Datei, die jedes E-Mail-Programm öffnen kann.',
  'account.download.link': 'ZIP-Datei herunterladen',
  'account.delete.heading': 'Postfach löschen',
  'account.delete.text':
    'Löscht das Postfach mit allen Nachrichten endgültig. Nichts davon kann wiederhergestellt werden, auch nicht von uns.',
  'account.delete.link': 'Postfach löschen …',
  'account.delete.title': 'Postfach endgültig löschen',
  'account.delete.warning':
    'Alle {count} Nachrichten in Posteingang, Gesendet und Papierkorb werden sofort und endgültig gelöscht, und Sie werden auf allen Geräten abgemeldet. Ein unter „Eigener Schlüssel“ hinterlegtes Zertifikat oder OpenPGP-Schlüssel wird mit gelöscht. Laden Sie vorher herunter, was Sie behalten möchten.',
  'account.delete.address': 'Ihre E-Mail-Adresse zur Bestätigung',
  'account.delete.addressHint': 'Geben Sie {address} ein.',
  'account.delete.addressWrong': 'Die Adresse stimmt nicht mit diesem Postfach überein.',
  'account.delete.confirm': 'Ich möchte das Postfach mit allen Nachrichten endgültig löschen.',
  'account.delete.confirmMissing': 'Bitte bestätigen Sie, dass das Postfach gelöscht werden soll.',
  'account.delete.submit': 'Postfach endgültig löschen',
  'account.delete.cancel': 'Abbrechen, zurück zum Konto',
  'account.delete.done.title': 'Postfach gelöscht',
  'account.delete.done.text':
    'Ihr Postfach und alle Nachrichten sind gelöscht, und Sie sind abgemeldet. Schreibt Ihnen eine Behörde erneut, erhalten Sie einen neuen Aktivierungslink.',
  // --- end account sections ---

  // --- registration ---
  'registration.title': 'Sicheres Postfach einrichten',
  'registration.intro':
    'Behörden schicken Ihnen vertrauliche Nachrichten in ein sicheres Postfach, wenn für Ihre Adresse kein Verschlüsselungsschlüssel hinterlegt ist. Sie können dieses Postfach schon vorher einrichten: Geben Sie Ihre E-Mail-Adresse ein. Sie erhalten einen Link und danach in einer zweiten E-Mail eine PIN.',
  'registration.address': 'E-Mail-Adresse',
  'registration.addressHint': 'An diese Adresse schicken wir den Link und die PIN.',
  'registration.submit': 'Postfach anfordern',
  'registration.addressInvalid': 'Bitte geben Sie eine gültige E-Mail-Adresse ein.',
  'registration.agencyDomain':
    'Diese Adresse gehört zu einer angeschlossenen Behörde. Behördenadressen erhalten kein Postfach im Messenger: Nachrichten an sie werden direkt und verschlüsselt per E-Mail zugestellt.',
  'registration.agencyHint': 'Sie vertreten eine Behörde?',
  'registration.sent.title': 'Anfrage erhalten',
  'registration.sent.text':
    'Wenn diese Adresse ein Postfach bekommen kann, ist eine E-Mail an sie unterwegs. Sie sagt Ihnen, wie es weitergeht.',
  'registration.sent.next':
    'Einen neuen Link erhalten Sie mit einer PIN in einer zweiten E-Mail, einige Minuten später. Haben Sie schon ein Postfach, erklärt die E-Mail, wie Sie sich anmelden.',
  // --- end registration ---

  // --- agency registration ---
  'agencyRegistration.title': 'Behörde registrieren',
  'agencyRegistration.intro':
    'Registrieren Sie Ihre Behörde für das Mail-Gateway. Der Betrieb prüft Ihre Angaben und meldet sich bei Ihnen; bis dahin ändert sich an Ihrer E-Mail nichts. Sie erhalten sofort eine E-Mail mit den nächsten Schritten und einer Checkliste.',
  'agencyRegistration.agencyName': 'Name der Behörde',
  'agencyRegistration.contactName': 'Ansprechperson',
  'agencyRegistration.contactEmail': 'E-Mail-Adresse der Ansprechperson',
  'agencyRegistration.contactEmailHint': 'An diese Adresse schicken wir die nächsten Schritte.',
  'agencyRegistration.contactPhone': 'Telefon',
  'agencyRegistration.optional': 'Freiwillige Angabe.',
  'agencyRegistration.domains': 'Domains der Behörde',
  'agencyRegistration.domainsHint': 'Eine Domain pro Zeile, z. B. stadt-musterhausen.de (höchstens 20).',
  'agencyRegistration.note': 'Anmerkung',
  'agencyRegistration.submit': 'Registrierung absenden',
  'agencyRegistration.error.agencyName': 'Bitte geben Sie den Namen der Behörde an (2 bis 200 Zeichen, eine Zeile).',
  'agencyRegistration.error.contactName':
    'Bitte geben Sie den Namen der Ansprechperson an (2 bis 200 Zeichen, eine Zeile).',
  'agencyRegistration.error.contactEmail': 'Bitte geben Sie eine gültige E-Mail-Adresse an.',
  'agencyRegistration.error.contactPhone':
    'Bitte geben Sie die Telefonnummer nur mit Ziffern, Leerzeichen und + ( ) / . - an, oder lassen Sie das Feld leer.',
  'agencyRegistration.error.domainsMissing': 'Bitte geben Sie mindestens eine Domain an.',
  'agencyRegistration.error.domainsTooMany': 'Bitte geben Sie höchstens {max} Domains an.',
  'agencyRegistration.error.domainInvalid':
    '„{domain}“ ist keine Domain. Bitte nur Domains wie stadt-musterhausen.de, eine pro Zeile.',
  'agencyRegistration.error.note': 'Die Anmerkung darf höchstens {max} Zeichen lang sein.',
  'agencyRegistration.sent.title': 'Registrierung erhalten',
  'agencyRegistration.sent.text':
    'Vielen Dank. Ihre Registrierung (Vorgang {id}) liegt dem Betrieb zur Prüfung vor. Eine E-Mail mit den nächsten Schritten ist an {email} unterwegs.',
  'agencyRegistration.sent.nextTitle': 'Wie es weitergeht',
  'agencyRegistration.sent.step1':
    'Der Betrieb prüft, ob die Domains zu Ihrer Behörde gehören, und meldet sich bei Ihnen.',
  'agencyRegistration.sent.step2':
    'Sie bereiten Zertifikate, Vertrauensanker und die Einstellungen Ihres Mailservers vor (Checkliste in der E-Mail).',
  'agencyRegistration.sent.step3':
    'Nach der Freischaltung laufen Nachrichten Ihrer Behörde verschlüsselt über das Gateway.',
  // --- end agency registration ---
} as const;

export type MessageKey = keyof typeof de;
