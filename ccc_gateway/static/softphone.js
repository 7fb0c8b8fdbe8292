/*
 * The softphone page: shows the agent's state and the Alibaba Cloud sign-in (Sign in / Sign
 * out; the token and its renewal under Details), runs the CCC workbench SDK while signed in,
 * and talks to the widget in the CRM page that frames it.
 *
 * Messages to the parent (only when framed, targetOrigin = our own origin):
 *   {type: 'ccc:state', signedIn, status, busy, agentState, caller, notifications}
 *                                                 sign-in and SDK status changes
 *   {type: 'ccc:screen-pop', caller, callee, callType, jobId, url, target}
 *                                                 an incoming call (url: same-origin path)
 *   {type: 'ccc:confirm', number}                 a call waits for the agent's Call
 *   {type: 'ccc:call-result', number, ok, reason, message}  (reason 'Cancelled': not confirmed)
 *   {type: 'ccc:show'}                            the agent must see the panel (sign in again)
 *   {type: 'ccc:close'}                           Esc: the agent wants the panel closed
 *   {type: 'ccc:size', height}                    this page's content height, for the panel
 * Messages from the parent: {type: 'ccc:call', number}, {type: 'ccc:release'},
 * {type: 'ccc:check'} (a CRM page loaded somewhere: check the sign-in now),
 * {type: 'ccc:customer', name} (the screen-popped page names the ringing call's customer).
 *
 * Click-to-call comes from CRM page content, which the CRM's users may write (an invisible
 * element over the whole page dials on any click). So unless confirm_dial is off, a number
 * from the parent is only shown here with Call/Cancel; this separate document is the one place
 * a click on the CRM page cannot reach. Enter calls, Esc cancels, and any other key cancels
 * too: the agent was typing somewhere else, and their next Enter must not dial.
 *
 * The running SDK belongs to the agent and CRM user it was started for. Every check of
 * /aliyun/session (on each CRM page load, via the widget, and every WATCH_MS) compares: a
 * definite answer that the CRM user changed or logged out, the sign-in ended, or another agent
 * signed in logs the agent out of the SDK and tears it down, with the reason on the panel. No
 * answer (network error, 5xx) is not a reason: a call in progress goes on.
 * A 401 from the API (NotAuthenticated) or a CrmUserMismatch asks for such a check; when the
 * session still says signed in, the agent signs in again in a popup and the SDK is started
 * again; a call in progress stays.
 *
 * One page for three SDK generations (config.sdk, docs/softphone.md): classic 1.x
 * (`new WorkbenchSdk`, positional hook arguments, status 2 = signed in), 2.x (`new WorkbenchSdk`
 * with regionId, one object per hook, status 2 = break) and the 3.x UI build
 * (`new CCCWorkbenchSDK`, taken to behave like 2.x: its hooks are not publicly documented, so
 * every hook accepts either form). The hooks' call details become one shape here:
 * {caller, callee, callType, jobId, callContext}.
 *
 * What the agent sees (docs/softphone.md, "The agent's view"): the state in an agent's words
 * (AGENT_STATES: signed out, ready, on break, ringing, talking, on hold, after-call work, ...)
 * with its colour; a ringing call with its number, the customer's name once the widget's
 * screen pop names it ({type: 'ccc:customer', name} from the parent) and an Answer button;
 * the token's lifetime and a manual renewal only under "Details" (renewal is automatic). State changes are announced (a live region). Esc (with
 * no call waiting for confirmation) asks the widget to close the panel ({type: 'ccc:close'});
 * the page's height goes to the widget ({type: 'ccc:size', height}) so the panel fits it.
 * Every word comes from window.cccI18n (static/i18n.js, the page's first script).
 */
(function () {
  'use strict';

  const config = JSON.parse(document.getElementById('ccc-config').textContent);
  const CLASSIC = config.sdk === 'v1';
  // Status codes: classic 6 ringing, 8 dialing, 9/10 call, 12 hold; 2 signed in, 3 ready,
  // 4 break, 5 after-call work may dial. 2.x adds 11 internal call, 16/17 three-way and
  // consulting, 20/21 help and monitoring, 24-26 supervisor calls; only 3 (idle) may dial.
  const IN_CALL = CLASSIC ? [6, 8, 9, 10, 12]
    : [6, 8, 9, 10, 11, 12, 16, 17, 20, 21, 24, 25, 26];
  const IDLE = CLASSIC ? [2, 3, 4, 5] : [3];
  const AUTH_ERRORS = ['NotAuthenticated', 'CrmUserMismatch', 'HTTP401'];
  // How stale a running softphone's view of the sign-in may get: a sign-in ended elsewhere
  // (revoke in another tab, expiry) tears the softphone down within this time.
  const WATCH_MS = 5000;
  const SIGN_IN_WINDOW = 'ccc-signin'; // the popup's name: widget.js stays out of it
  // The agent's state for a status code (keys of the catalogs' ui.state.*); -1/0: registering.
  const TALKING = [9, 10, 11, 16, 17, 20, 21, 22, 23, 24, 25, 26];
  const AGENT_STATES = Object.assign(
    { '-1': 'signing-in', 0: 'signing-in', 1: 'offline', 3: 'ready', 5: 'acw', 6: 'ringing',
      8: 'dialing', 12: 'hold' },
    CLASSIC ? { 2: 'not-ready', 4: 'break' } : { 2: 'break' },
    Object.fromEntries(TALKING.map((code) => [code, 'talking'])));
  // The language and catalog lookup of static/i18n.js, served in front of this script.
  const LANGUAGE = window.cccI18n.language;
  const t = window.cccI18n.t;
  const ui = {
    state: document.getElementById('ccc-state'),
    agent: document.getElementById('ccc-agent'),
    live: document.getElementById('ccc-live'),
    hint: document.getElementById('ccc-hint'),
    ringing: document.getElementById('ccc-ringing'),
    ringingNumber: document.getElementById('ccc-ringing-number'),
    ringingCustomer: document.getElementById('ccc-ringing-customer'),
    answer: document.getElementById('ccc-answer'),
    details: document.getElementById('ccc-details'),
    detailAccount: document.getElementById('ccc-detail-account'),
    detailCrm: document.getElementById('ccc-detail-crm'),
    detailStatus: document.getElementById('ccc-detail-status'),
    expiry: document.getElementById('ccc-expiry'),
    message: document.getElementById('ccc-message'),
    signIn: document.getElementById('ccc-signin'),
    reSignIn: document.getElementById('ccc-resignin'),
    refresh: document.getElementById('ccc-refresh'),
    signOut: document.getElementById('ccc-signout'),
    workbench: document.getElementById('ccc-workbench'),
    confirm: document.getElementById('ccc-confirm'),
    confirmNumber: document.getElementById('ccc-confirm-number'),
    confirmCall: document.getElementById('ccc-confirm-call'),
    confirmCancel: document.getElementById('ccc-confirm-cancel'),
  };
  const framed = window.parent !== window;
  let session = null; // the last /aliyun/session answer
  let sdk = null;
  let status = -1;
  let popup = null;
  let popupTimer = null;
  let dialing = null; // set while sdk.call() runs: the SDK refuses synchronously
  let owner = null; // {crmUser, upn} the running SDK was started for
  let pending = null; // the number waiting for the agent's Call
  let call = null; // {caller, customer} of the ringing or connected call
  let shown = null; // the agent state last shown

  /** The page's own words: every element marked data-i18n gets its catalog text. */
  function translatePage() {
    document.documentElement.lang = LANGUAGE;
    for (const node of document.querySelectorAll('[data-i18n]')) {
      node.textContent = t(node.dataset.i18n);
    }
    for (const node of document.querySelectorAll('[data-i18n-label]')) {
      node.setAttribute('aria-label', t(node.dataset.i18nLabel));
    }
  }

  function tell(message) {
    if (framed) window.parent.postMessage(message, location.origin);
  }

  function say(text, warn) {
    ui.message.textContent = text || '';
    ui.message.classList.toggle('ccc-warn-text', Boolean(warn));
  }

  /** The agent's state in their words' key (ui.state.*). */
  function agentState() {
    if (session === null) return 'connecting';
    if (!session.signedIn) return popup ? 'signing-in' : 'signed-out'; // the popup is open
    if (!sdk) return 'connecting';
    return AGENT_STATES[status] || 'connecting';
  }

  /** Show the state here, announce a change, and tell the widget. */
  function announce() {
    const state = agentState();
    document.body.dataset.state = state;
    ui.state.textContent = t('ui.state.' + state);
    if (state !== shown) {
      shown = state;
      ui.live.textContent = t('ui.state.' + state) + (call ? ' · ' + call.caller : '');
    }
    ui.ringing.hidden = state !== 'ringing' || !call;
    ui.answer.hidden = !(sdk && typeof sdk.answer === 'function');
    if (call) {
      ui.ringingNumber.textContent = call.caller;
      ui.ringingCustomer.textContent = call.customer;
    }
    ui.detailStatus.textContent = sdk ? t('ui.page.details_status', { code: status }) : '';
    tell({
      type: 'ccc:state', signedIn: Boolean(session && session.signedIn), status,
      busy: IN_CALL.includes(status), agentState: state, caller: call ? call.caller : '',
      notifications: config.notifications === true,
    });
  }

  function showAccount() {
    const signedIn = Boolean(session && session.signedIn);
    ui.agent.textContent = signedIn ? (session.agent.name || session.agent.upn) : '';
    ui.hint.hidden = signedIn || session === null;
    ui.details.hidden = !signedIn;
    ui.detailAccount.textContent = signedIn ? t('ui.page.details_account', { upn: session.agent.upn }) : '';
    ui.detailCrm.textContent = signedIn && session.crmUser
      ? t('ui.page.details_crm_user', { user: session.crmUser }) : '';
    ui.expiry.textContent = signedIn && session.expiresAt ? t('ui.page.details_token', {
      time: new Date(session.expiresAt).toLocaleTimeString(LANGUAGE),
    }) : '';
    ui.signIn.hidden = signedIn || session === null;
    ui.refresh.hidden = !signedIn;
    ui.signOut.hidden = !signedIn;
    if (!signedIn) ui.reSignIn.hidden = true;
    announce();
  }

  /** Why the running SDK must stop, given a definite /aliyun/session answer; null: it may run. */
  function ownerGone(next) {
    if (!owner) return null;
    if (next.crmUser !== owner.crmUser) {
      return next.crmUser
        ? t('ui.page.other_crm_user', { user: next.crmUser, upn: owner.upn })
        : t('ui.page.crm_logged_out');
    }
    if (!next.signedIn) {
      return t('ui.page.signin_ended');
    }
    if (!next.agent || next.agent.upn !== owner.upn) {
      return t('ui.page.other_agent', { upn: owner.upn });
    }
    return null;
  }

  /**
   * Ask the gateway who is signed in and act on it. `watching`: a check of a running softphone
   * (page load elsewhere, timer, API error) that changes nothing unless its owner is gone.
   */
  async function checkSession(watching) {
    if (watching && !sdk) return;
    let next;
    try {
      const response = await fetch('/aliyun/session', { credentials: 'same-origin', cache: 'no-store' });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      next = await response.json();
    } catch (err) {
      if (watching) return; // no answer is not "signed out": a call in progress goes on
      if (!sdk) session = null;
      showAccount();
      say(t('ui.page.no_answer'), true);
      return;
    }
    const why = sdk ? ownerGone(next) : null;
    if (watching && !why) return;
    if (why) stopSdk(true);
    session = next;
    showAccount();
    if (session.signedIn) {
      ui.reSignIn.hidden = true;
      startSdk();
    } else {
      stopSdk(false);
    }
    if (why) {
      say(why, true);
      tell({ type: 'ccc:show' });
    }
  }

  // ---- the workbench SDK ----

  /**
   * One call's details from a hook's arguments: an object (2.x/3.x; camelCase, or PascalCase
   * should the SDK pass the API's CallContext keys) or classic positional arguments
   * (connid, caller, callee, contactId).
   */
  function callDetail(args, callType) {
    const first = args[0];
    if (first !== null && typeof first === 'object') {
      const pick = (name) => {
        const value = first[name] !== undefined ? first[name]
          : first[name.charAt(0).toUpperCase() + name.slice(1)];
        return value === undefined || value === null ? '' : String(value);
      };
      const context = first.callContext !== undefined ? first.callContext : first.CallContext;
      return {
        caller: pick('caller'),
        callee: pick('callee'),
        callType: direction(pick('callType'), callType),
        jobId: pick('jobId'), callContext: context === undefined ? null : context,
      };
    }
    const text = (value) => (value === undefined || value === null ? '' : String(value));
    return {
      caller: text(args[1]), callee: text(args[2]), callType, jobId: text(args[3]),
      callContext: null,
    };
  }

  /**
   * Tell call_log.js (the after-call form, call history): a 'ccc-call' DOM event with the
   * normalised call detail, the SDK status and the SDK itself (to end after-call work).
   */
  function callEvent(kind, args, callType) {
    const detail = Object.assign({ kind, status, sdk }, callDetail(args, callType));
    document.dispatchEvent(new CustomEvent('ccc-call', { detail }));
  }

  /** `Inbound` / `Outbound` whatever the SDK's spelling (INBOUND, inbound); others as given. */
  function direction(value, fallback) {
    const known = { inbound: 'Inbound', outbound: 'Outbound' }[value.toLowerCase()];
    return known || value || fallback;
  }

  /** A status hook's code: classic passes (code, lastCode, context), 2.x {code, lastCode, context}. */
  function statusCode(value) {
    const code = value !== null && typeof value === 'object' ? value.code : value;
    const number = Number(code);
    return Number.isFinite(number) ? number : status;
  }

  function register(instance) {
    if (!CLASSIC && typeof instance.register === 'function') instance.register();
  }

  function startSdk() {
    const Sdk = window[config.sdkGlobal];
    if (typeof Sdk !== 'function') {
      say(t('ui.page.sdk_missing'), true);
      return;
    }
    if (sdk) {
      // After a new sign-in: reconnect only a softphone that gave up, never one in a call.
      if (status === -1 && typeof sdk.restart === 'function') sdk.restart();
      return;
    }
    say('');
    owner = { crmUser: session.crmUser, upn: session.agent.upn };
    let created = null;
    let early = false;
    // The hooks come last: configured options (config.options) cannot replace them.
    created = new Sdk(Object.assign({}, config.options, {
      dom: ui.workbench,
      // 2.x: "call register() after onInit" (SIP registration, sign-in, ready); the classic
      // SDK registers by itself. Whether the 3.x UI build does is not documented: if it
      // does, this second register() is refused (an error the page ignores).
      onInit() {
        if (created) register(created);
        else early = true; // called from inside the constructor: register once it returns
        announce();
      },
      onLogIn() { say(''); announce(); },
      onLogOut() { announce(); },
      onCallComing(...args) {
        callEvent('ringing', args, 'Inbound');
        ringing(callDetail(args, 'Inbound'));
      },
      onCallDialing(...args) {
        callEvent('ringing', args, 'Outbound');
        const detail = callDetail(args, 'Outbound');
        if (detail.callee) call = { caller: detail.callee, customer: '' };
        announce();
      },
      onCallEstablish(...args) { callEvent('answered', args, ''); announce(); },
      onCallRelease(...args) { callEvent('ended', args, ''); announce(); },
      onHangUp() { announce(); },
      onStatusChange(value) {
        status = statusCode(value);
        if (!IN_CALL.includes(status)) call = null; // the call is over (it may ring first)
        callEvent('status', [], '');
        announce();
      },
      onErrorNotify(error) { sdkError(error || {}); },
    }));
    sdk = created;
    if (early) register(created);
  }

  /**
   * Stop the SDK. `logOut`: its agent is no longer the one here (sign-in ended, other CRM user),
   * so end a call and log the agent out at the call center first. Not when another tab of this
   * agent takes the softphone over: that would log out the new one.
   */
  function stopSdk(logOut) {
    if (!sdk) return;
    const old = sdk;
    const was = status;
    sdk = null;
    owner = null;
    status = -1;
    call = null;
    hideConfirm();
    if (logOut) {
      try {
        if (IN_CALL.includes(was) && typeof old.hangUp === 'function') old.hangUp();
        if (typeof old.logOut === 'function') old.logOut();
      } catch (err) { /* the SDK refused (state): destroying it below disconnects anyway */ }
    }
    if (typeof old.destroy === 'function') old.destroy();
    else if (!logOut && typeof old.logOut === 'function') old.logOut();
    ui.workbench.replaceChildren();
    announce();
  }

  function sdkError(raw) {
    // The classic SDK's keys; a 2.x/3.x SDK may pass the API's Code/Message/RequestId instead.
    const error = Object.assign({}, raw, {
      errorCode: String(raw.errorCode || raw.Code || raw.code || ''),
      errorMsg: raw.errorMsg || raw.Message || raw.message || '',
    });
    if (AUTH_ERRORS.includes(error.errorCode)) {
      const mismatch = error.errorCode === 'CrmUserMismatch';
      say(t(mismatch ? 'ui.page.mismatch' : 'ui.page.ended_continue'), true);
      ui.reSignIn.hidden = false;
      tell({ type: 'ccc:show' });
      checkSession(true); // if the session agrees the owner is gone, the softphone stops
      return;
    }
    if (dialing) dialing.error = error; // reported while call() ran: the call's own error
  }

  /** An incoming call: shown here with Answer, and popped in the CRM by the widget. */
  function ringing(detail) {
    if (detail.caller) call = { caller: detail.caller, customer: '' };
    screenPop(detail);
    announce();
    if (!ui.answer.hidden) ui.answer.focus(); // Enter (or Space) answers
  }

  function answer() {
    if (!sdk || typeof sdk.answer !== 'function') return;
    try {
      const result = sdk.answer();
      if (result && typeof result.catch === 'function') result.catch(() => {}); // onErrorNotify says why
    } catch (err) { /* the SDK refused (no ringing call): its state says why */ }
  }

  /** The CRM page for an incoming call: the template with the call's details (numbers.js). */
  function screenPop(detail) {
    if (!detail.caller) return;
    const url = window.cccNumbers.popUrl(config.screenPop.url, detail); // numbers.js
    tell({
      type: 'ccc:screen-pop', caller: detail.caller, callee: detail.callee,
      callType: detail.callType, jobId: detail.jobId, url, target: config.screenPop.target,
    });
  }

  /** Tell the parent and the agent why `number` cannot be called now; false when it can. */
  function refused(number) {
    const result = { type: 'ccc:call-result', number, ok: false };
    if (!session || !session.signedIn) {
      say(t('ui.page.sign_in_to_call', { number }), true);
      tell(Object.assign(result, { reason: 'SignedOut', message: 'Sign in to call.' }));
      return true;
    }
    if (!sdk || !IDLE.includes(status)) {
      const why = IN_CALL.includes(status) ? 'Busy' : 'NotReady';
      say(t(why === 'Busy' ? 'ui.page.busy' : 'ui.page.not_ready'), true);
      tell(Object.assign(result, { reason: why, message: 'The softphone is not ready.' }));
      return true;
    }
    return false;
  }

  /** A number from page content (the parent): shown for the agent's Call unless confirm_dial is off. */
  function requestCall(number) {
    if (refused(number)) return;
    if (config.confirmDial === false) {
      dial(number);
      return;
    }
    pending = number;
    ui.confirmNumber.textContent = number;
    ui.confirm.hidden = false;
    say('');
    tell({ type: 'ccc:confirm', number });
    ui.confirmCall.focus(); // works once the panel shows; the widget then focuses this frame
  }

  function hideConfirm() {
    pending = null;
    ui.confirm.hidden = true;
  }

  function confirmCall() {
    const number = pending;
    hideConfirm();
    if (number !== null) dial(number);
  }

  function cancelCall(why) {
    const number = pending;
    hideConfirm();
    if (number === null) return;
    say(t(why ? 'ui.page.cancelled_key' : 'ui.page.cancelled', { number }));
    tell({ type: 'ccc:call-result', number, ok: false, reason: 'Cancelled', message: 'Cancelled.' });
  }

  function onKey(event) {
    if (event.isComposing) return;
    if (pending === null) {
      if (event.key === 'Escape') tell({ type: 'ccc:close' }); // the widget closes the panel
      return;
    }
    if (event.key === 'Enter') {
      event.preventDefault(); // also stops the focused button's own activation
      if (document.activeElement === ui.confirmCancel) cancelCall();
      else confirmCall();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      cancelCall();
    } else if (event.key.length === 1 || event.key === 'Backspace') {
      cancelCall(true);
    }
  }

  /** Tell the agent and the widget how the dial went (error: the SDK's, normalised). */
  function dialed(number, error) {
    const result = { type: 'ccc:call-result', number, ok: !error };
    if (error) {
      say(t('ui.page.not_started', { reason: error.errorMsg || error.errorCode }), true);
      Object.assign(result, { reason: error.errorCode, message: error.errorMsg });
    }
    tell(result);
  }

  /**
   * Dial through the generation's call method (call(callee) in all three). The SDK refuses
   * synchronously (an onErrorNotify while call() runs, classic) or, in 2.x/3.x, may answer
   * later: call() may return a promise (MakeCall goes through the API), and an onErrorNotify
   * before it settles is this call's error (UNVERIFIED for the real SDK: both are handled).
   */
  function dial(number) {
    if (refused(number)) return;
    const attempt = { error: null };
    dialing = attempt;
    let answer = null;
    try {
      answer = sdk.call(number);
    } catch (err) {
      attempt.error = { errorCode: 'CallFailed', errorMsg: String((err && err.message) || err) };
    }
    const done = (error) => {
      if (dialing === attempt) dialing = null;
      dialed(number, attempt.error || error);
    };
    if (attempt.error || !answer || typeof answer.then !== 'function') {
      done(null);
      return;
    }
    answer.then(() => done(null), (err) => done({
      errorCode: String((err && (err.errorCode || err.code)) || 'CallFailed'),
      errorMsg: String((err && (err.errorMsg || err.message)) || ''),
    }));
  }

  // ---- sign-in popup, refresh, sign-out ----

  function openSignIn() {
    if (popup && !popup.closed) {
      popup.focus();
      return;
    }
    popup = window.open(config.signInUrl, SIGN_IN_WINDOW, 'popup,width=520,height=680');
    if (!popup) {
      say(t('ui.page.popup_blocked'), true);
      return;
    }
    say(t('ui.page.finish_popup'));
    announce();
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
    checkSession(false);
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
        say(t('ui.page.refreshed'));
      } else if (response.status === 401) {
        await checkSession(false);
      } else {
        say(t('ui.page.refresh_failed', { reason: body.message || response.status }), true);
      }
    } catch (err) {
      say(t('ui.page.refresh_no_answer'), true);
    } finally {
      ui.refresh.disabled = false;
    }
  }

  async function signOut() {
    if (IN_CALL.includes(status) && !window.confirm(t('ui.page.confirm_sign_out'))) {
      return;
    }
    ui.signOut.disabled = true;
    try {
      await post('/aliyun/revoke');
      stopSdk(false);
      await checkSession(false);
      say(t('ui.page.signed_out'));
    } catch (err) {
      say(t('ui.page.sign_out_failed'), true);
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
    if (data.type === 'ccc:call' && typeof data.number === 'string') requestCall(data.number);
    else if (data.type === 'ccc:release') stopSdk(false);
    else if (data.type === 'ccc:check') checkSession(true);
    else if (data.type === 'ccc:customer' && call && typeof data.name === 'string') {
      call.customer = data.name.slice(0, 80); // the screen-popped page named the caller
      announce();
    }
  });

  /** The widget sizes its panel to this page's content: no half-empty panel. */
  function reportSize() {
    tell({ type: 'ccc:size', height: Math.ceil(document.body.getBoundingClientRect().height) });
  }

  translatePage();
  ui.answer.addEventListener('click', answer);
  if (typeof window.ResizeObserver === 'function') {
    new window.ResizeObserver(reportSize).observe(document.body);
  }

  // The popup's second way to report (signed-in.js): a COOP on the way may have cut it off.
  if (typeof window.BroadcastChannel === 'function') {
    new window.BroadcastChannel('ccc-signin').addEventListener('message', (event) => {
      if (event.data && event.data.type === 'ccc:signed-in') popupDone();
    });
  }

  ui.signIn.addEventListener('click', openSignIn);
  ui.reSignIn.addEventListener('click', openSignIn);
  ui.refresh.addEventListener('click', refresh);
  ui.signOut.addEventListener('click', signOut);
  ui.confirmCall.addEventListener('click', confirmCall);
  ui.confirmCancel.addEventListener('click', () => cancelCall());
  document.addEventListener('keydown', onKey);
  // Call back from the call history (call_log.js): confirmed like any other number.
  document.addEventListener('ccc-dial', (event) => {
    if (event.detail && typeof event.detail.number === 'string') requestCall(event.detail.number);
  });
  // The widget focuses this frame when it shows the panel for a confirmation: the Call button.
  window.addEventListener('focus', () => { if (pending !== null) ui.confirmCall.focus(); });
  setInterval(() => checkSession(true), WATCH_MS);
  checkSession(false);
})();
