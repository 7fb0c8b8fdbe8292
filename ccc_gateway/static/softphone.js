/*
 * The softphone page: shows the Alibaba Cloud sign-in (Sign in / Refresh / Sign out), runs the
 * CCC workbench SDK while signed in, and talks to the widget in the CRM page that frames it.
 *
 * Messages to the parent (only when framed, targetOrigin = our own origin):
 *   {type: 'ccc:state', signedIn, status, busy}   sign-in and SDK status changes
 *   {type: 'ccc:screen-pop', caller, url}         an incoming call (url: same-origin path)
 *   {type: 'ccc:call-result', number, ok, reason, message}
 *   {type: 'ccc:show'}                            the agent must see the panel (sign in again)
 * Messages from the parent: {type: 'ccc:call', number}, {type: 'ccc:release'}.
 * A 401 from the gateway (NotAuthenticated) or a CrmUserMismatch never tears down the page:
 * the agent signs in again in a popup and the SDK is started again; a call in progress stays.
 */
(function () {
  'use strict';

  const config = JSON.parse(document.getElementById('ccc-config').textContent);
  const IN_CALL = [6, 8, 9, 10, 12];
  const IDLE = [2, 3, 4, 5];
  const AUTH_ERRORS = ['NotAuthenticated', 'CrmUserMismatch', 'HTTP401'];
  const ui = {
    agent: document.getElementById('ccc-agent'),
    expiry: document.getElementById('ccc-expiry'),
    message: document.getElementById('ccc-message'),
    signIn: document.getElementById('ccc-signin'),
    reSignIn: document.getElementById('ccc-resignin'),
    refresh: document.getElementById('ccc-refresh'),
    signOut: document.getElementById('ccc-signout'),
    workbench: document.getElementById('ccc-workbench'),
  };
  const framed = window.parent !== window;
  let session = null; // the last /aliyun/session answer
  let sdk = null;
  let status = -1;
  let popup = null;
  let popupTimer = null;
  let dialing = null; // set while sdk.call() runs: the SDK refuses synchronously

  function tell(message) {
    if (framed) window.parent.postMessage(message, location.origin);
  }

  function say(text, warn) {
    ui.message.textContent = text || '';
    ui.message.classList.toggle('ccc-warn-text', Boolean(warn));
  }

  function announce() {
    tell({
      type: 'ccc:state', signedIn: Boolean(session && session.signedIn), status,
      busy: IN_CALL.includes(status),
    });
  }

  function showAccount() {
    const signedIn = Boolean(session && session.signedIn);
    if (session === null) {
      ui.agent.textContent = 'Sign-in state unknown';
      ui.expiry.textContent = '';
    } else if (signedIn) {
      ui.agent.textContent = 'Signed in as ' + (session.agent.name || session.agent.upn);
      ui.expiry.textContent = session.expiresAt
        ? '(token until ' + new Date(session.expiresAt).toLocaleTimeString() + ')' : '';
    } else {
      ui.agent.textContent = 'Signed out of Alibaba Cloud';
      ui.expiry.textContent = '';
    }
    ui.signIn.hidden = signedIn;
    ui.refresh.hidden = !signedIn;
    ui.signOut.hidden = !signedIn;
    if (!signedIn) ui.reSignIn.hidden = true;
    announce();
  }

  async function checkSession() {
    try {
      const response = await fetch('/aliyun/session', { credentials: 'same-origin', cache: 'no-store' });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      session = await response.json();
    } catch (err) {
      session = null;
      showAccount();
      say('The gateway did not answer; try again in a moment.', true);
      return;
    }
    showAccount();
    if (session.signedIn) {
      ui.reSignIn.hidden = true;
      startSdk();
    } else {
      stopSdk();
    }
  }

  // ---- the workbench SDK ----

  function startSdk() {
    if (typeof window.WorkbenchSdk !== 'function') {
      say('The call center softphone could not be loaded (Alibaba Cloud unreachable?). '
        + 'The CRM keeps working; reload this panel later.', true);
      return;
    }
    if (sdk) {
      // After a new sign-in: reconnect only a softphone that gave up, never one in a call.
      if (status === -1 && typeof sdk.restart === 'function') sdk.restart();
      return;
    }
    say('');
    sdk = new window.WorkbenchSdk({
      dom: ui.workbench,
      instanceId: config.instanceId,
      ajaxPath: config.ajaxPath,
      ajaxMethod: config.ajaxMethod,
      header: config.header,
      onInit() { announce(); },
      onLogIn() { say(''); announce(); },
      onLogOut() { announce(); },
      onCallComing(connid, caller) { screenPop(caller); },
      onCallDialing() { announce(); },
      onCallEstablish() { announce(); },
      onHangUp() { announce(); },
      onStatusChange(code) { status = code; announce(); },
      onErrorNotify(error) { sdkError(error || {}); },
    });
  }

  function stopSdk() {
    if (!sdk) return;
    const old = sdk;
    sdk = null;
    status = -1;
    if (typeof old.destroy === 'function') old.destroy();
    else if (typeof old.logOut === 'function') old.logOut();
    ui.workbench.replaceChildren();
    announce();
  }

  function sdkError(error) {
    if (AUTH_ERRORS.includes(error.errorCode)) {
      const mismatch = error.errorCode === 'CrmUserMismatch';
      say(mismatch
        ? 'This Alibaba Cloud sign-in belongs to another CRM user: sign in again.'
        : 'Your Alibaba Cloud sign-in has ended: sign in again. Calls in progress continue.', true);
      ui.reSignIn.hidden = false;
      tell({ type: 'ccc:show' });
      return;
    }
    if (error.errorApi === 'call' && dialing) dialing.error = error;
  }

  function screenPop(caller) {
    const number = String(caller || '');
    if (!number) return;
    const url = config.screenPop.url.split('{caller}').join(encodeURIComponent(number));
    tell({ type: 'ccc:screen-pop', caller: number, url, target: config.screenPop.target });
  }

  function dial(number) {
    const result = { type: 'ccc:call-result', number, ok: false };
    if (!session || !session.signedIn) {
      say('Sign in to Alibaba Cloud to call ' + number + '.', true);
      return tell(Object.assign(result, { reason: 'SignedOut', message: 'Sign in to call.' }));
    }
    if (!sdk || !IDLE.includes(status)) {
      const why = IN_CALL.includes(status) ? 'Busy' : 'NotReady';
      say('The softphone cannot call now (' + (why === 'Busy' ? 'in a call' : 'not ready') + ').', true);
      return tell(Object.assign(result, { reason: why, message: 'The softphone is not ready.' }));
    }
    dialing = { error: null };
    try {
      sdk.call(number);
    } finally {
      const error = dialing.error;
      dialing = null;
      if (error) {
        say('The call did not start: ' + (error.errorMsg || error.errorCode) + '.', true);
        tell(Object.assign(result, { reason: error.errorCode, message: error.errorMsg }));
      } else {
        tell(Object.assign(result, { ok: true }));
      }
    }
  }

  // ---- sign-in popup, refresh, sign-out ----

  function openSignIn() {
    if (popup && !popup.closed) {
      popup.focus();
      return;
    }
    popup = window.open(config.signInUrl, 'ccc-signin', 'popup,width=520,height=680');
    if (!popup) {
      say('The sign-in window was blocked: allow pop-ups for this site and try again.', true);
      return;
    }
    say('Finish the sign-in in the window that opened.');
    clearInterval(popupTimer);
    // A closed popup (signed in, cancelled or failed) is noticed even without its message.
    popupTimer = setInterval(() => {
      if (popup && popup.closed) popupDone();
    }, 500);
  }

  function popupDone() {
    clearInterval(popupTimer);
    popup = null;
    say('');
    checkSession();
  }

  async function post(path) {
    const response = await fetch(path, { method: 'POST', credentials: 'same-origin' });
    const body = await response.json().catch(() => ({}));
    return { response, body };
  }

  async function refresh() {
    ui.refresh.disabled = true;
    try {
      const { response, body } = await post('/aliyun/refresh');
      if (response.ok) {
        session = body;
        showAccount();
        say('Token refreshed.');
      } else if (response.status === 401) {
        await checkSession();
      } else {
        say('Refresh failed: ' + (body.message || response.status), true);
      }
    } catch (err) {
      say('Refresh failed: the gateway did not answer.', true);
    } finally {
      ui.refresh.disabled = false;
    }
  }

  async function signOut() {
    if (IN_CALL.includes(status) && !window.confirm('A call is in progress. Sign out anyway?')) {
      return;
    }
    ui.signOut.disabled = true;
    try {
      const { body } = await post('/aliyun/revoke');
      stopSdk();
      await checkSession();
      say(body.message || 'Signed out.');
    } catch (err) {
      say('Sign-out failed: the gateway did not answer.', true);
    } finally {
      ui.signOut.disabled = false;
    }
  }

  window.addEventListener('message', (event) => {
    if (event.origin !== location.origin) return;
    const data = event.data;
    if (!data || typeof data.type !== 'string') return;
    if (popup && event.source === popup && data.type === 'ccc:signed-in') {
      popupDone();
      return;
    }
    if (!framed || event.source !== window.parent) return;
    if (data.type === 'ccc:call' && typeof data.number === 'string') dial(data.number);
    else if (data.type === 'ccc:release') stopSdk();
  });

  ui.signIn.addEventListener('click', openSignIn);
  ui.reSignIn.addEventListener('click', openSignIn);
  ui.refresh.addEventListener('click', refresh);
  ui.signOut.addEventListener('click', signOut);
  checkSession();
})();
