/*
 * The softphone widget the gateway injects into the CRM's pages: a floating button that shows
 * or hides a docked softphone (an iframe of /aliyun/softphone), click-to-call on tel: links and
 * [data-ccc-call] elements, and screen pop on incoming calls.
 *
 * One tab holds the softphone. The call center accepts one softphone per agent, and two would
 * ring together, so the tabs of this origin agree over BroadcastChannel "ccc-softphone" (or
 * localStorage "storage" events where there is none):
 * - A new tab asks who holds it ("query"); if nobody answers it takes it ("claim").
 * - A tab that held it before a reload or navigation takes it back at once (sessionStorage).
 * - Decision: a newer claim takes over from an idle holder, never from one in a call; the
 *   agent may also press "Use it here" in another tab. The holder says "released" when its
 *   page goes away; the others then ask again after a pause that lets a reloading holder
 *   return first.
 * - Other tabs show the button as "open in another tab" and forward click-to-call ("dial") to
 *   the holder; with no answer they take the softphone themselves and dial.
 * Page <-> iframe messages use postMessage with targetOrigin = location.origin and accept only
 * event.origin === location.origin from the expected frame's own window.
 *
 * Keeping the call across CRM navigation ("shell mode"). The softphone's SDK holds the call
 * (SIP/WebRTC; the emulator's websocket), so anything that unloads the page holding its iframe
 * hangs up - a same-tab screen pop would drop the very call it announces. Chosen design: while
 * this tab holds a signed-in softphone (or one in a call), a same-origin navigation of the
 * page does not unload it; the widget keeps this document and the softphone iframe alive and
 * shows the CRM page in a full-size same-origin content iframe instead. Why this and not:
 * - a pop-out softphone window: it needs a click to open (pop-up blockers), so the default
 *   docked softphone would still lose calls; it stays a possible extra mode;
 * - soft navigation (fetch and swap the body): CRM scripts, forms and styles would run in the
 *   wrong document; a frame gives every CRM page its own real document, unchanged.
 * Why whenever signed in, not only during a call: every reload re-registers the phone line
 * (seconds with real SIP/WebRTC), and a call arriving meanwhile is missed; and the switch
 * into the frame then happens on an ordinary click rather than at the moment a call rings.
 * How: link clicks, form submissions (sent into the frame by `target`, so the browser still
 * posts the CRM's own form) and script navigations (Navigation API, where there is one) are
 * diverted into the frame. The first one pushes one history entry; the frame's own navigations
 * add theirs, so Back and Forward walk the CRM pages; the address bar and title follow the
 * frame (history.replaceState). Back past the first framed page shows this document's own CRM
 * page again. The widget inside the frame starts no softphone: it forwards click-to-call to
 * this page and reports same-document URL changes, both over postMessage.
 * The gateway says on the script tag (data-ccc-frame) whether the CRM lets its pages be
 * framed by their own origin (X-Frame-Options / CSP frame-ancestors). When the CRM refuses,
 * the tab navigates as before and, during a call, the widget warns that navigating ends it.
 * When one page refuses at load time, the widget offers it in a new tab or here (ending the
 * call). Address-bar navigations and reloads cannot be diverted by any page.
 *
 * Click-to-call asks the softphone, which (unless softphone.confirm_dial is off) shows the
 * number with Call/Cancel in its own frame: CRM content the CRM's users wrote (an invisible
 * [data-ccc-call] over the page) must not place a paid call with one click. The widget opens
 * the panel and focuses that frame, so Enter calls and Esc cancels.
 *
 * The softphone belongs to one CRM user and agent. Every CRM page load (this tab's, a framed
 * one, another tab's) says "check" on the bus; the holder passes it to its softphone, which
 * re-reads /aliyun/session (and does so every 5 s anyway) and tears itself down when its CRM
 * user or sign-in is gone.
 *
 * The sign-in popup (window name SIGN_IN_WINDOW, opened by the softphone) may show CRM pages
 * (the CRM login before Alibaba's): the widget stays out of it, so it never takes the
 * softphone from the tab that opened it.
 *
 * Popup windows the CRM opens (lookups, dialogs: a window with an opener of this origin) never
 * hold the softphone either: they would take it from the agent's tab and lose it on close
 * (and window.open copies the opener's sessionStorage, holder mark included). Like a framed
 * CRM page they forward click-to-call to the holder tab.
 *
 * Click-to-call beyond tel: links (selectors, phone inputs, numbers in text) is numbers.js,
 * served in front of this file; it hands every number to dial() below.
  *
 * What the agent sees (docs/softphone.md, "The agent's view"): the button shows the agent's
 * state in words and colour (the softphone page names it: signed out, ready, on break,
 * ringing, talking, on hold, after-call work, ...). An incoming call opens the panel by itself
 * in the tab holding the softphone, with the caller's number and, once the screen pop has
 * loaded a CRM page with a title, the customer's name; in a background tab a desktop
 * notification brings the agent there (softphone.notifications; the permission is asked once,
 * on a click of the button). Other tabs show the state too (the holder says it on the bus).
 * State changes are announced to screen readers (a live region); Esc closes the panel. While
 * the panel is open the toast is its top line, so the two never overlap.
 *
 * Every word comes from window.cccI18n (static/i18n.js, served in front of numbers.js and this
 * file, with the catalogs of ccc_gateway/i18n): the configured ui.language, or for `auto` the
 * browser's (navigator.languages: the first Chinese or English one; neither gives English).
 */
(function () {
  'use strict';

  if (window.cccSoftphoneWidget) return; // injected twice (e.g. a CRM page including itself)
  window.cccSoftphoneWidget = true;
  // The softphone's sign-in popup (softphone.js gives it this name) may pass through CRM
  // pages, the CRM login first of all: no widget there, so it never claims the softphone.
  const SIGN_IN_WINDOW = 'ccc-signin';
  if (window.name === SIGN_IN_WINDOW && window.opener) return;

  const ORIGIN = location.origin;
  const PAGE = '/aliyun/softphone';
  const HOLDER_KEY = 'ccc-softphone-holder';
  const OPEN_KEY = 'ccc-softphone-open';
  const BUS_KEY = 'ccc-softphone-bus';
  const QUERY_WAIT_MS = 300;
  const RECLAIM_PAUSE_MS = 1500;
  const ACK_WAIT_MS = 1500;
  const NUMBER = /^\+?[0-9*#]{1,32}$/;
  const id = Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 10);
  const topLevel = window.top === window && !crmPopup();
  // Whether the gateway saw the CRM allow same-origin framing (inject.py); default: it does.
  const script = document.currentScript;
  const FRAMEABLE = !(script && script.dataset.cccFrame === 'refused');
  const CONTENT_ID = 'ccc-content';
  const CONTENT_NAME = 'ccc-content-' + id; // the form target that sends a submission into it
  const SHELL_MARK = 'cccShell'; // key of our history entries' state: {cccShell: id}
  const SELF_TARGETS = ['', '_self', '_top', '_parent'];
  const NOTIFY_ASKED_KEY = 'ccc-notifications-asked';
  // The language and catalog lookup of static/i18n.js, served in front of this script.
  const LANGUAGE = window.cccI18n.language;
  const t = window.cccI18n.t;

  const state = {
    role: 'undecided', // 'holder' | 'elsewhere' | 'undecided'
    claimedAt: 0,
    holderId: null,
    signedIn: null,
    busy: false,
    ready: false, // the iframe said hello: messages can be posted
    queue: [], // numbers to dial once the softphone is ready
    ackTimer: null,
    agentState: null, // the softphone's word for the agent's state (ui.state.* keys)
    caller: '', // the ringing or connected call's number
    customer: '', // its customer's name, from the screen-popped CRM page's title
    popUrl: null, // the screen pop's page, whose title names the customer
    notifications: false, // softphone.notifications, as the softphone page says
    remote: null, // another tab's holder's {agentState, caller, customer}
  };

  // The content frame of shell mode (top-level page only).
  const shell = {
    frame: null, // the iframe showing CRM pages while this document stays
    current: null, // the URL the frame shows (as read at its last load or report)
    pending: null, // where the frame was last sent or said it was going
    entered: false, // the frame has shown a page: this document's own page is hidden
    leaving: false, // set while the page navigates on purpose: no diverting then
    title: document.title, // this document's own title, restored with its CRM page
  };

  // A CRM page inside our shell's content frame: whether the parent said it is the shell.
  const content = { inShell: false };

  /** A window the CRM opened (same-origin opener); our screen pops and new tabs have none. */
  function crmPopup() {
    try {
      return Boolean(window.opener && window.opener !== window && window.opener.location.origin === location.origin);
    } catch (err) {
      return false; // an opener of another origin: this is the agent's CRM tab all the same
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function session(key, value) {
    try {
      if (value === undefined) return window.sessionStorage.getItem(key);
      if (value === null) window.sessionStorage.removeItem(key);
      else window.sessionStorage.setItem(key, value);
    } catch (err) { /* storage disabled: the widget still works, without memory */ }
    return null;
  }

  // ---- the tab bus ----

  function makeBus(onMessage) {
    if (typeof window.BroadcastChannel === 'function') {
      const channel = new window.BroadcastChannel('ccc-softphone');
      channel.addEventListener('message', (event) => onMessage(event.data));
      return (message) => channel.postMessage(message);
    }
    window.addEventListener('storage', (event) => {
      if (event.key !== BUS_KEY || !event.newValue) return;
      try { onMessage(JSON.parse(event.newValue)); } catch (err) { /* not ours */ }
    });
    return (message) => {
      try {
        // A fresh nonce makes every message a change, so a repeated one still fires "storage".
        window.localStorage.setItem(BUS_KEY, JSON.stringify(Object.assign({ nonce: Math.random() }, message)));
      } catch (err) { /* no storage: every tab acts alone */ }
    };
  }

  const post = makeBus(onBus);

  // ---- the UI ----

  const root = el('div', 'ccc-widget');
  root.id = 'ccc-softphone';
  root.lang = LANGUAGE;
  const button = root.appendChild(el('button', 'ccc-widget-button'));
  button.type = 'button';
  button.id = 'ccc-softphone-button';
  button.setAttribute('aria-expanded', 'false');
  button.setAttribute('aria-controls', 'ccc-softphone-panel');
  const dot = button.appendChild(el('span', 'ccc-widget-dot'));
  dot.setAttribute('aria-hidden', 'true');
  const buttonText = button.appendChild(el('span', 'ccc-widget-label', t('ui.widget.button')));
  const panel = root.appendChild(el('div', 'ccc-widget-panel'));
  panel.id = 'ccc-softphone-panel';
  panel.setAttribute('role', 'region');
  panel.setAttribute('aria-label', t('ui.widget.frame_title'));
  panel.hidden = true;
  const head = panel.appendChild(el('div', 'ccc-widget-head'));
  const headText = head.appendChild(el('p', 'ccc-widget-head-text', t('ui.widget.button')));
  headText.id = 'ccc-softphone-head';
  const close = head.appendChild(el('button', 'ccc-widget-close', '×'));
  close.type = 'button';
  close.id = 'ccc-softphone-close';
  close.setAttribute('aria-label', t('ui.widget.close'));
  close.title = t('ui.widget.close');
  const elsewhere = panel.appendChild(el('div', 'ccc-widget-elsewhere'));
  elsewhere.append(el('p', '', t('ui.widget.elsewhere')));
  const takeOver = elsewhere.appendChild(el('button', 'ccc-widget-takeover',
    t('ui.widget.take_over')));
  takeOver.type = 'button';
  const warning = root.appendChild(el('p', 'ccc-widget-warning', t('ui.widget.warning')));
  warning.id = 'ccc-softphone-warning';
  warning.setAttribute('role', 'alert');
  const notice = root.appendChild(el('div', 'ccc-widget-notice'));
  notice.id = 'ccc-softphone-notice';
  notice.setAttribute('role', 'alert');
  notice.hidden = true;
  const noticeText = notice.appendChild(el('p', ''));
  const noticeTab = notice.appendChild(el('button', 'ccc-widget-notice-tab',
    t('ui.widget.notice_tab')));
  noticeTab.type = 'button';
  const noticeHere = notice.appendChild(el('button', 'ccc-widget-notice-here',
    t('ui.widget.notice_here')));
  noticeHere.type = 'button';
  const noticeClose = notice.appendChild(el('button', 'ccc-widget-notice-close',
    t('ui.widget.dismiss')));
  noticeClose.type = 'button';
  let noticeUrl = null;
  const toast = root.appendChild(el('div', 'ccc-widget-toast'));
  toast.id = 'ccc-softphone-toast';
  toast.setAttribute('role', 'status');
  toast.setAttribute('aria-live', 'polite');
  // Screen readers hear each state change here (the visible words are on the button).
  const live = root.appendChild(el('div', 'ccc-widget-live'));
  live.id = 'ccc-softphone-live';
  live.setAttribute('role', 'status');
  live.setAttribute('aria-live', 'assertive');
  let notification = null;
  let frame = null;
  let toastTimer = null;

  /** The agent's state in words: the caller (and customer) when ringing or talking. */
  function stateText(view) {
    const name = t('ui.state.' + view.agentState);
    const who = view.customer ? view.customer + ' ' + view.caller : view.caller;
    return who && ['ringing', 'talking', 'dialing', 'hold'].includes(view.agentState)
      ? name + ' · ' + who : name;
  }

  function render() {
    const holder = state.role === 'holder';
    const view = holder ? state : (state.role === 'elsewhere' ? state.remote : null);
    const agentState = view && view.agentState ? view.agentState : null;
    root.classList.toggle('ccc-holder', holder);
    root.classList.toggle('ccc-elsewhere', state.role === 'elsewhere');
    root.classList.toggle('ccc-busy', holder && state.busy);
    root.classList.toggle('ccc-signed-out', holder && state.signedIn === false);
    for (const name of Array.from(root.classList)) {
      if (name.startsWith('ccc-state-')) root.classList.remove(name);
    }
    if (agentState) root.classList.add('ccc-state-' + agentState);
    let label = t('ui.widget.button');
    if (state.role === 'elsewhere') {
      label = agentState ? t('ui.widget.in_other_tab', { state: stateText(view) })
        : t('ui.widget.open_elsewhere');
    } else if (agentState) {
      label = t('ui.widget.button_state', { state: stateText(view) });
    }
    buttonText.textContent = label;
    elsewhere.hidden = state.role !== 'elsewhere';
    warning.hidden = !(holder && state.busy && !FRAMEABLE);
  }

  function setOpen(open) {
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    session(OPEN_KEY, open ? '1' : null);
    // Open, the toast is the panel's top line; closed, it floats above the button.
    if (open) panel.insertBefore(toast, head.nextSibling);
    else root.insertBefore(toast, root.firstChild);
  }

  function say(text) {
    toast.textContent = text;
    toast.classList.add('ccc-widget-toast-shown');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toast.classList.remove('ccc-widget-toast-shown'), 5000);
  }

  /** A new agent state from the softphone (or the holder tab): show, announce, ring. */
  function changeState(agentState, caller) {
    const before = state.agentState;
    const told = JSON.stringify(holderView());
    const inCall = (name) => ['ringing', 'talking', 'dialing', 'hold'].includes(name);
    // A call's details end with the call; the SDK may report the call before its state.
    if (inCall(before) && !inCall(agentState)) {
      Object.assign(state, { caller: '', customer: '', popUrl: null });
    }
    if (inCall(agentState) && caller) state.caller = caller;
    state.agentState = agentState;
    if (agentState !== before) {
      if (inCall(before)) toast.classList.remove('ccc-widget-toast-shown'); // about the last call
      live.textContent = stateText(state);
      if (agentState === 'ringing') ringing();
      else closeNotification();
    }
    if (state.role === 'holder' && JSON.stringify(holderView()) !== told) {
      post(Object.assign(holderView(), { type: 'agent-state', id })); // other tabs' buttons
    }
  }

  /** An incoming call: the panel opens here; a background tab also gets a notification. */
  function ringing() {
    setOpen(true);
    if (document.hidden) notify();
  }

  function notify() {
    if (!state.notifications || typeof window.Notification !== 'function'
      || window.Notification.permission !== 'granted') return;
    closeNotification();
    const who = state.customer ? state.customer + ' ' + state.caller : state.caller;
    notification = new window.Notification(t('ui.widget.notify_title'), {
      body: t('ui.widget.notify_body', { caller: who }), tag: 'ccc-ringing',
      requireInteraction: true, lang: LANGUAGE,
    });
    notification.onclick = () => {
      window.focus(); // brings this tab to the front
      setOpen(true);
      if (frame) frame.focus();
      closeNotification();
    };
  }

  function closeNotification() {
    if (notification) notification.close();
    notification = null;
  }

  /** Ask for the notification permission once, on the agent's click (browsers want one). */
  function askNotifications() {
    if (!state.notifications || typeof window.Notification !== 'function'
      || window.Notification.permission !== 'default') return;
    try {
      if (window.localStorage.getItem(NOTIFY_ASKED_KEY)) return;
      window.localStorage.setItem(NOTIFY_ASKED_KEY, '1');
    } catch (err) { /* no storage: ask anyway, the browser remembers a refusal */ }
    window.Notification.requestPermission();
  }

  /** The screen-popped page loaded: its title (up to a separator) names the customer. */
  function customerFrom(href, title) {
    if (!state.popUrl || href !== state.popUrl || typeof title !== 'string' || !title) return;
    state.popUrl = null;
    state.customer = title.split(/\s+[·|–—-]\s+/)[0].trim().slice(0, 80);
    toFrame({ type: 'ccc:customer', name: state.customer, caller: state.caller });
    if (state.role === 'holder') post(Object.assign(holderView(), { type: 'agent-state', id }));
    render();
  }

  // ---- holding the softphone ----

  function becomeHolder() {
    state.role = 'holder';
    state.holderId = id;
    state.claimedAt = Date.now();
    session(HOLDER_KEY, '1');
    post({ type: 'claim', id, at: state.claimedAt });
    if (!frame) {
      frame = el('iframe', 'ccc-widget-frame');
      frame.id = 'ccc-softphone-frame';
      frame.title = t('ui.widget.frame_title');
      frame.setAttribute('allow', 'microphone');
      frame.src = PAGE;
      panel.append(frame);
    }
    render();
  }

  function yieldTo(otherId) {
    state.role = 'elsewhere';
    state.holderId = otherId;
    session(HOLDER_KEY, null);
    if (frame) {
      toFrame({ type: 'ccc:release' });
      frame.remove();
      frame = null;
    }
    Object.assign(state, { ready: false, signedIn: null, busy: false, agentState: null });
    closeNotification();
    render();
  }

  function discover() {
    if (state.role === 'holder') return;
    state.role = 'undecided';
    post({ type: 'query', id });
    setTimeout(() => {
      if (state.role !== 'undecided') return;
      if (topLevel) becomeHolder();
      else state.role = 'elsewhere'; // a framed CRM page never holds the softphone
      flushQueue();
    }, QUERY_WAIT_MS);
  }

  /** What other tabs show of this holder's softphone. */
  function holderView() {
    return { agentState: state.agentState, caller: state.caller, customer: state.customer };
  }

  /** "I hold the softphone", to the tab `to`, with the agent's state for its button. */
  function postHolder(to) {
    post(Object.assign(holderView(), {
      type: 'holder', id, at: state.claimedAt, busy: state.busy, to,
    }));
  }

  function newer(atA, idA, atB, idB) {
    return atA > atB || (atA === atB && idA > idB);
  }

  function onBus(m) {
    if (!m || typeof m.type !== 'string' || m.id === id) return;
    const holder = state.role === 'holder';
    if (m.type === 'query' && holder) {
      postHolder(m.id);
    } else if (m.type === 'claim' || m.type === 'holder') {
      if (m.type === 'holder' && m.to && m.to !== id && !holder) return;
      const keep = holder && (state.busy && !m.busy
        || !m.busy && newer(state.claimedAt, id, m.at, m.id));
      if (keep) postHolder(m.id);
      else yieldTo(m.id);
      if (!keep && typeof m.agentState === 'string') {
        state.remote = { agentState: m.agentState, caller: String(m.caller || ''),
          customer: String(m.customer || '') };
        render();
      }
      flushQueue();
    } else if (m.type === 'released' && state.role === 'elsewhere' && state.holderId === m.id) {
      state.holderId = null;
      state.remote = null; // its state went with it
      render();
      setTimeout(discover, RECLAIM_PAUSE_MS + Math.random() * 500);
    } else if (m.type === 'dial' && holder && m.to === id && typeof m.number === 'string') {
      post({ type: 'dial-ack', id, to: m.id, number: m.number });
      say(t('ui.widget.calling_other_tab', { number: m.number }));
      dialHere(m.number);
    } else if (m.type === 'dial-ack' && m.to === id) {
      clearTimeout(state.ackTimer);
      say(t('ui.widget.went_other_tab', { number: m.number }));
    } else if (m.type === 'agent-state' && state.role === 'elsewhere' && m.id === state.holderId) {
      state.remote = { agentState: String(m.agentState || ''), caller: String(m.caller || ''),
        customer: String(m.customer || '') };
      render();
    } else if (m.type === 'check' && holder) {
      toFrame({ type: 'ccc:check' }); // a CRM page loaded: its user may not be ours any more
    }
  }

  // ---- click-to-call ----

  function normalise(raw) {
    let text = String(raw || '').trim().replace(/^tel:/i, '').split(';')[0];
    try { text = decodeURIComponent(text); } catch (err) { /* keep it as written */ }
    text = text.replace(/[\s.()[\]-]/g, '');
    return NUMBER.test(text) ? text : null;
  }

  function toFrame(message) {
    if (frame && frame.contentWindow) frame.contentWindow.postMessage(message, ORIGIN);
  }

  function dialHere(number) {
    if (state.signedIn === false) setOpen(true); // show the Sign in button, not a dead click
    if (state.ready) toFrame({ type: 'ccc:call', number });
    else state.queue.push(number);
  }

  function flushQueue() {
    if (state.role === 'undecided') return;
    const numbers = state.queue.splice(0);
    for (const number of numbers) dial(number);
  }

  function dial(number) {
    if (content.inShell) {
      // The shell around this page holds (or knows) the softphone and shows the toast.
      window.parent.postMessage({ type: 'ccc:dial', number }, ORIGIN);
      return undefined;
    }
    say(t('ui.widget.calling', { number }));
    if (state.role === 'holder') return dialHere(number);
    if (state.role === 'undecided') {
      state.queue.push(number);
      return undefined;
    }
    if (!state.holderId) {
      if (!topLevel) return say(t('ui.widget.open_crm_tab'));
      state.queue.push(number);
      return discover();
    }
    post({ type: 'dial', id, to: state.holderId, number });
    clearTimeout(state.ackTimer);
    // The other tab may have crashed without saying "released": take the softphone here.
    state.ackTimer = setTimeout(() => {
      if (!topLevel) return say(t('ui.widget.no_answer_tab'));
      becomeHolder();
      setOpen(true);
      dialHere(number);
    }, ACK_WAIT_MS);
    return undefined;
  }

  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element
      ? event.target.closest('a[href^="tel:" i], [data-ccc-call]') : null;
    if (!target || root.contains(target)) return;
    event.preventDefault(); // the softphone dials, not the operating system's phone handler
    const raw = target.hasAttribute('data-ccc-call')
      ? target.getAttribute('data-ccc-call') : target.getAttribute('href');
    const number = normalise(raw);
    if (number === null) say(t('ui.widget.not_number'));
    else dial(number);
  }, true);

  // ---- messages from the softphone frame ----

  function screenPop(m) {
    if (typeof m.url !== 'string' || !m.url.startsWith('/') || m.url.startsWith('//')) return;
    const target = new URL(m.url, ORIGIN);
    if (target.origin !== ORIGIN) return; // the template is a CRM path; never leave the origin
    const caller = String(m.caller || '');
    // No toast: the panel opens on the ringing call and shows it (changeState).
    if (caller && !state.caller) state.caller = caller;
    if (m.target === 'new-tab') {
      const opened = window.open(target.href, '_blank');
      if (opened) opened.opener = null;
      else say(t('ui.widget.allow_popups', { caller }));
    } else if (canShell()) {
      state.popUrl = target.href;
      showInFrame(target); // the softphone and its ringing call stay in this document
    } else {
      leave(target.href); // the CRM refuses framing: as before, and the warning says so
    }
  }

  /** Why a call from this page did not start, in the agent's language. */
  function callRefusal(m) {
    const number = String(m.number || '');
    if (m.reason === 'SignedOut') return t('ui.widget.sign_in_to_call', { number });
    if (m.reason === 'Busy') return t('ui.page.busy');
    if (m.reason === 'NotReady') return t('ui.page.not_ready');
    return t('ui.widget.not_started', { reason: String(m.message || m.reason) });
  }

  function fromSoftphone(m) {
    if (m.type === 'ccc:state') {
      state.signedIn = Boolean(m.signedIn);
      state.busy = Boolean(m.busy);
      state.notifications = m.notifications === true;
      const first = !state.ready;
      state.ready = true;
      if (typeof m.agentState === 'string') changeState(m.agentState, String(m.caller || ''));
      render();
      if (first) for (const number of state.queue.splice(0)) dialHere(number);
    } else if (m.type === 'ccc:screen-pop') {
      screenPop(m);
    } else if (m.type === 'ccc:confirm') {
      setOpen(true);
      say(t('ui.widget.confirm', { number: String(m.number || '') }));
      if (frame) frame.focus(); // the keys go to the softphone, never to the CRM page
    } else if (m.type === 'ccc:call-result' && m.ok) {
      say(t('ui.widget.calling', { number: String(m.number || '') }));
    } else if (m.type === 'ccc:call-result' && m.reason === 'Cancelled') {
      say(t('ui.widget.cancelled', { number: String(m.number || '') }));
    } else if (m.type === 'ccc:call-result') {
      setOpen(true);
      say(callRefusal(m));
    } else if (m.type === 'ccc:show') {
      setOpen(true);
    } else if (m.type === 'ccc:size' && frame && Number.isFinite(m.height)) {
      // The panel is as tall as the softphone's content: no half-empty panel.
      frame.style.height = Math.max(120, Math.min(Math.ceil(m.height), 640)) + 'px';
    } else if (m.type === 'ccc:close') {
      closePanel();
    }
  }

  // ---- shell mode: the top-level page keeps the softphone, CRM pages go into a frame ----

  /** `href` as a URL when it is a page of this origin (http/https), else null. */
  function sameOrigin(href) {
    let url;
    try { url = new URL(href, location.href); } catch (err) { return null; }
    if (url.origin !== ORIGIN || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
    return url;
  }

  function gatewayPath(url) {
    // The gateway's own pages (sign-in redirects, JSON) are never shown as CRM pages.
    return url.pathname === '/aliyun' || url.pathname.startsWith('/aliyun/');
  }

  function canShell() {
    return topLevel && FRAMEABLE && typeof history.pushState === 'function';
  }

  function framed() {
    return Boolean(shell.frame);
  }

  /** Whether a navigation of this page would unload something worth keeping. */
  function keepAlive() {
    return canShell() && !shell.leaving && state.role === 'holder'
      && (state.signedIn === true || state.busy);
  }

  function leave(href) {
    shell.leaving = true; // our own navigate listener must let this one through
    // A navigation that ends without unloading (204, download) must not disarm us for good.
    setTimeout(() => { shell.leaving = false; }, 5000);
    window.location.assign(href);
  }

  /**
   * Create the content frame. `entered` false: it stays invisible until its first page has
   * loaded (follow), so a link that turns out to be a download, or a page that refuses the
   * frame, leaves this document's own page and history as they were.
   */
  function openFrame(href, entered) {
    const f = document.createElement('iframe');
    f.id = CONTENT_ID;
    f.name = CONTENT_NAME;
    f.className = 'ccc-content-frame';
    f.title = t('ui.widget.content_title');
    f.addEventListener('load', () => { if (f === shell.frame) onContentLoad(); });
    // Set before insertion: the first load then replaces the frame's initial about:blank
    // instead of adding a history entry (the pushState below stands for it).
    if (href) f.src = href;
    if (!entered) f.classList.add('ccc-content-loading');
    document.body.insertBefore(f, root);
    document.documentElement.classList.toggle('ccc-shell', entered);
    shell.frame = f;
    shell.entered = entered;
    shell.pending = href;
    shell.current = null;
    return f;
  }

  function closeFrame() {
    if (!shell.frame) return;
    shell.frame.remove();
    shell.frame = null;
    shell.entered = false;
    shell.current = null;
    shell.pending = null;
    document.documentElement.classList.remove('ccc-shell');
    document.title = shell.title;
  }

  /** Show a CRM page without unloading this document (the caller checked it may). */
  function showInFrame(url) {
    hideNotice();
    if (framed()) {
      shell.pending = url.href;
      shell.frame.src = url.href; // a new entry of the frame: Back returns to its last page
      return shell.frame;
    }
    return openFrame(url.href, false);
  }

  /** Address bar and title follow the page the frame shows. */
  function follow(href, title) {
    const url = sameOrigin(href);
    if (!url || !framed()) return;
    shell.current = url.href;
    shell.pending = null;
    if (!shell.entered) {
      // One entry for the step from this document's own page into the frame (its first load
      // replaced the frame's initial about:blank and added none): Back returns to that page.
      shell.entered = true;
      history.pushState({ [SHELL_MARK]: id }, '', url.href);
      shell.frame.classList.remove('ccc-content-loading');
      document.documentElement.classList.add('ccc-shell');
    } else if (location.href !== url.href) {
      history.replaceState(history.state, '', url.href);
    }
    document.title = typeof title === 'string' && title ? title.slice(0, 300) : shell.title;
    customerFrom(url.href, title);
  }

  function onContentLoad() {
    let href = null;
    let title = '';
    try {
      href = shell.frame.contentWindow.location.href;
      title = shell.frame.contentDocument ? shell.frame.contentDocument.title : '';
    } catch (err) {
      href = null; // another origin, or the browser's error page for a refused frame
    }
    if (href === 'about:blank') return; // the frame's initial document, before a form lands
    if (href !== null && sameOrigin(href)) follow(href, title);
    else refused();
  }

  /** The frame could not show the page (it forbids framing, or it left this origin). */
  function refused() {
    const target = shell.pending && sameOrigin(shell.pending);
    if (!shell.entered) closeFrame(); // never shown: this document's own page stays as it was
    if (!state.busy && target) {
      leave(target.href); // nothing to lose: show it the ordinary way
      return;
    }
    showNotice(t('ui.widget.refused_page'),
      target ? target.href : null);
  }

  function showNotice(text, href) {
    noticeText.textContent = text;
    noticeUrl = href;
    noticeTab.hidden = !href;
    noticeHere.hidden = !href;
    notice.hidden = false;
  }

  function hideNotice() {
    notice.hidden = true;
    noticeUrl = null;
  }

  function selfTarget(target) {
    return SELF_TARGETS.includes(String(target || '').trim().toLowerCase());
  }

  function baseTarget() {
    const base = document.querySelector('base[target]');
    return base ? base.getAttribute('target') : '';
  }

  /** Same document, only the fragment differs: the browser scrolls, nothing unloads. */
  function fragmentOnly(url) {
    const here = new URL(location.href);
    return url.hash !== '' && url.href.split('#')[0] === here.href.split('#')[0];
  }

  function onLinkClick(event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey
      || event.shiftKey || event.altKey || !keepAlive()) return;
    const link = event.target instanceof Element
      ? event.target.closest('a[href], area[href]') : null;
    if (!link || root.contains(link) || link.hasAttribute('download')) return;
    const target = link.hasAttribute('target') ? link.getAttribute('target') : baseTarget();
    if (!selfTarget(target)) return;
    const url = sameOrigin(link.href);
    if (!url || gatewayPath(url) || fragmentOnly(url)) return;
    event.preventDefault();
    showInFrame(url);
  }

  function onSubmit(event) {
    const form = event.target;
    if (event.defaultPrevented || !keepAlive() || !(form instanceof HTMLFormElement)) return;
    const submitter = event.submitter instanceof HTMLElement ? event.submitter : null;
    const byButton = (name) => (submitter && submitter.hasAttribute(name)
      ? submitter.getAttribute(name) : null);
    const method = (byButton('formmethod') || form.getAttribute('method') || 'get').toLowerCase();
    if (method === 'dialog') return;
    const targetName = byButton('formtarget') ?? (form.hasAttribute('target')
      ? form.getAttribute('target') : baseTarget());
    if (!selfTarget(targetName)) return;
    const action = sameOrigin(submitter && submitter.hasAttribute('formaction')
      ? submitter.formAction : form.action);
    if (!action || gatewayPath(action)) return;
    // The browser still submits the CRM's own form (method, fields, enctype), only into the
    // content frame: the target is read after this event, and restored right after.
    if (!framed()) openFrame(null, false);
    shell.pending = action.href;
    const saved = [[form, 'target'], [submitter, 'formtarget']]
      .filter(([node, name]) => node && (node === form || node.hasAttribute(name)))
      .map(([node, name]) => [node, name, node.getAttribute(name)]);
    for (const [node, name] of saved) node.setAttribute(name, CONTENT_NAME);
    setTimeout(() => {
      for (const [node, name, value] of saved) {
        if (value === null) node.removeAttribute(name);
        else node.setAttribute(name, value);
      }
    }, 0);
  }

  function onNavigate(event) {
    // Script navigations (location.assign, a CRM frame-buster, window.open(url, '_self')).
    // Link clicks and submissions are handled above and never reach this.
    if (event.defaultPrevented || !event.cancelable || !keepAlive()) return;
    if (event.navigationType !== 'push' && event.navigationType !== 'replace') return;
    if (event.destination.sameDocument || (event.downloadRequest ?? null) !== null
      || event.formData) {
      return; // a history/fragment change, a download, or a script form.submit(): let it go
    }
    const url = sameOrigin(event.destination.url);
    if (!url || gatewayPath(url)) return;
    if (framed() && url.href === shell.current) {
      // A CRM page breaking out of its frame: it wants the tab, so it gets it.
      leave(url.href);
      return;
    }
    event.preventDefault();
    showInFrame(url);
  }

  function onPopState(event) {
    const ours = Boolean(event.state && event.state[SHELL_MARK] === id);
    if (ours && !framed()) openFrame(location.href, true); // Forward into the frame again
    else if (!ours && framed()) closeFrame(); // Back to this document's own CRM page
  }

  function fromContent(m) {
    if (m.type === 'ccc:content-ready') {
      shell.frame.contentWindow.postMessage({ type: 'ccc:shell' }, ORIGIN);
      follow(m.url, m.title);
    } else if (m.type === 'ccc:location') {
      follow(m.url, m.title);
    } else if (m.type === 'ccc:navigating' && typeof m.url === 'string') {
      const url = sameOrigin(m.url);
      shell.pending = url ? url.href : null;
    } else if (m.type === 'ccc:dial' && typeof m.number === 'string') {
      const number = normalise(m.number);
      if (number !== null) dial(number);
    }
  }

  // ---- a CRM page inside the shell's content frame ----

  function toShell(message) {
    if (content.inShell) window.parent.postMessage(message, ORIGIN);
  }

  function report() {
    toShell({ type: 'ccc:location', url: location.href, title: document.title });
  }

  function onContentClick(event) {
    if (!content.inShell || event.defaultPrevented || event.button !== 0 || event.metaKey
      || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target instanceof Element
      ? event.target.closest('a[href], area[href]') : null;
    if (!link || link.hasAttribute('download')) return;
    const target = String((link.hasAttribute('target') ? link.getAttribute('target')
      : baseTarget()) || '').trim().toLowerCase();
    if (!SELF_TARGETS.includes(target)) return;
    let url;
    try { url = new URL(link.href); } catch (err) { return; }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return;
    if (url.origin !== ORIGIN) {
      // Another site would replace the CRM in the frame (or refuse to be framed): a new tab.
      event.preventDefault();
      const opened = window.open(url.href, '_blank', 'noopener');
      if (opened) opened.opener = null;
    } else if (target === '_top' || target === '_parent') {
      // In the shell "the whole tab" is this frame: leaving it would end the call.
      event.preventDefault();
      window.location.assign(url.href);
    }
  }

  function onContentSubmit(event) {
    const form = event.target;
    if (!content.inShell || event.defaultPrevented || !(form instanceof HTMLFormElement)) return;
    const submitter = event.submitter instanceof HTMLElement ? event.submitter : null;
    for (const [node, name] of [[form, 'target'], [submitter, 'formtarget']]) {
      const value = node && node.getAttribute(name);
      if (value && ['_top', '_parent'].includes(value.trim().toLowerCase())) {
        node.setAttribute(name, '_self'); // same reason as for links
      }
    }
  }

  function startContent() {
    // Only a same-origin parent receives this (targetOrigin); only our shell answers it.
    window.parent.postMessage(
      { type: 'ccc:content-ready', url: location.href, title: document.title }, ORIGIN);
    document.addEventListener('click', onContentClick);
    document.addEventListener('submit', onContentSubmit);
    window.addEventListener('hashchange', report);
    window.addEventListener('popstate', report);
    if (window.navigation && typeof window.navigation.addEventListener === 'function') {
      window.navigation.addEventListener('currententrychange', report); // CRM pushState
      window.navigation.addEventListener('navigate', (event) => {
        // Where the frame goes next, so the shell can offer it if it cannot be framed.
        if (!event.destination.sameDocument) {
          toShell({ type: 'ccc:navigating', url: event.destination.url });
        }
      });
    }
  }

  // ---- messages: each kind only from the one window that may send it ----

  window.addEventListener('message', (event) => {
    if (event.origin !== ORIGIN) return;
    const m = event.data;
    if (!m || typeof m.type !== 'string') return;
    if (frame && event.source === frame.contentWindow) {
      fromSoftphone(m);
    } else if (shell.frame && event.source === shell.frame.contentWindow) {
      fromContent(m);
    } else if (!topLevel && window.parent !== window && event.source === window.parent
      && m.type === 'ccc:shell') {
      content.inShell = true;
      report();
    }
  });

  function closePanel() {
    setOpen(false);
    button.focus();
  }

  button.addEventListener('click', () => {
    askNotifications();
    setOpen(panel.hidden);
  });
  close.addEventListener('click', closePanel);
  root.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !panel.hidden && !event.isComposing) {
      event.preventDefault();
      closePanel();
    }
  });
  takeOver.addEventListener('click', () => becomeHolder());
  noticeTab.addEventListener('click', () => {
    if (noticeUrl) window.open(noticeUrl, '_blank', 'noopener');
    hideNotice();
  });
  noticeHere.addEventListener('click', () => {
    if (noticeUrl) leave(noticeUrl);
  });
  noticeClose.addEventListener('click', hideNotice);
  window.addEventListener('pagehide', () => {
    if (state.role === 'holder') post({ type: 'released', id });
  });

  /** Click-to-call where CRMs put numbers (numbers.js): the same dial path as tel: links. */
  function startNumbers() {
    if (!window.cccNumbers) return;
    window.cccNumbers.watch((raw) => {
      const number = normalise(raw);
      if (number === null) say(t('ui.widget.not_number'));
      else dial(number);
    }, t('ui.page.call'));
  }

  function start() {
    post({ type: 'check', id }); // this page load: the holder's softphone re-checks its owner
    startNumbers();
    if (!topLevel) {
      // A CRM page inside a frame: no dock and no softphone of its own. In our shell it
      // forwards click-to-call to the shell; elsewhere to the holder tab over the bus.
      if (window.parent !== window) startContent();
      discover();
      return;
    }
    // Bubbling listeners on window run after the CRM's own: a CRM that handles a click or a
    // submission itself (preventDefault) keeps it.
    window.addEventListener('click', onLinkClick);
    window.addEventListener('submit', onSubmit);
    window.addEventListener('popstate', onPopState);
    if (window.navigation && typeof window.navigation.addEventListener === 'function') {
      window.navigation.addEventListener('navigate', onNavigate);
    }
    document.body.append(root);
    render();
    if (session(HOLDER_KEY) === '1') becomeHolder();
    else discover();
    if (session(OPEN_KEY) === '1') setOpen(true);
  }

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
