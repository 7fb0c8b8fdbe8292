/*
 * The last page of the sign-in popup: tell the softphone that opened it (same origin only,
 * so no other site learns of or fakes the sign-in) and close. A static file, not an inline
 * script, so this page's CSP can stay script-src 'self'.
 */
(function () {
  'use strict';
  if (window.opener && !window.opener.closed) {
    window.opener.postMessage({ type: 'ccc:signed-in' }, location.origin);
    window.close();
  }
})();
