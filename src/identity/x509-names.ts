/**
 * X.509 names as OpenSSL's one-line form, `/O=meshgate/CN=meshgate-upstream`: what MariaDB
 * compares, byte for byte, with an account's REQUIRE SUBJECT and REQUIRE ISSUER
 * (X509_NAME_oneline in sql_acl.cc's acl_check_ssl; checked on MariaDB 10.11).
 *
 * node's X509Certificate reports names one RDN per line with OpenSSL's short names, in
 * certificate order, RFC 2253-escaped: the same attributes as the one-line form, only the
 * separators differ, as long as nothing needed escaping. A name with escapes, a '/' in a
 * value, a multi-valued RDN or anything beyond printable ASCII would read differently in the
 * two forms, so it is refused here rather than guessed (and a certificate for meshgate's
 * upstream login is easily issued with a plain subject).
 */

/** The one-line form of a name as node's X509Certificate.subject/issuer gives it, or null when it has none that is certain. */
export function onelineName(multiline: string | undefined): string | null {
  if (multiline === undefined || multiline === '') return null;
  const parts = multiline.split('\n');
  for (const part of parts) {
    const equals = part.indexOf('=');
    if (equals <= 0) return null;
    const value = part.slice(equals + 1);
    // Printable ASCII without '\' (an escape), '/' (the one-line separator) or ' + ' (another
    // value of the same RDN in node's form).
    if (!/^[\x20-\x7e]*$/.test(part) || value.includes('\\') || value.includes('/') || value.includes(' + ')) return null;
  }
  return '/' + parts.join('/');
}
