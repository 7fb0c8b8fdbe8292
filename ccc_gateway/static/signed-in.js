/*
 * The last page of the sign-in popup: tell the softphone that opened it (same origin only,
 * so no other site learns of or fakes the sign-in) and close. A static file, not an inline
 * script, so this page's CSP can stay script-src 'self'.
 *
 * Two ways, because a Cross-Origin-Opener-Policy on the way (the CRM page's, or the sign-in
 * site's own) can cut the popup off from its opener: then window.opener is null here and the
 * softphone sees the popup as closed. A BroadcastChannel of this origin still reaches the
 * softphone, so it re-reads the session and shows the sign-in without a reload. The message
 * carries nothing: the softphone believes only /aliyun/session.
 */
(function () {
  'use strict';
  if (typeof window.BroadcastChannel === 'function') {
    const channel = new window.BroadcastChannel('ccc-signin');
    channel.postMessage({ type: 'ccc:signed-in' });
    channel.close();
  }
  if (window.opener && !window.opener.closed) {
    window.opener.postMessage({ type: 'ccc:signed-in' }, location.origin);
  }
  // A window a script opened may close itself (even cut off from its opener); a tab the agent
  // opened stays, with the page's text.
  window.close();
})();
