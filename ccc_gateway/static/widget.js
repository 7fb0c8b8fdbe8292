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
 * event.origin === location.origin from the iframe's own window.
 */
(function () {
  'use strict';

  if (window.cccSoftphoneWidget) return; // injected twice (e.g. a CRM page including itself)
  window.cccSoftphoneWidget = true;

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
  const topLevel = window.top === window;

  const state = {
    role: 'undecided', // 'holder' | 'elsewhere' | 'undecided'
    claimedAt: 0,
    holderId: null,
    signedIn: null,
    busy: false,
    ready: false, // the iframe said hello: messages can be posted
    queue: [], // numbers to dial once the softphone is ready
    ackTimer: null,
  };

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
  const button = root.appendChild(el('button', 'ccc-widget-button', 'Softphone'));
  button.type = 'button';
  button.id = 'ccc-softphone-button';
  button.setAttribute('aria-expanded', 'false');
  button.setAttribute('aria-controls', 'ccc-softphone-panel');
  const panel = root.appendChild(el('div', 'ccc-widget-panel'));
  panel.id = 'ccc-softphone-panel';
  panel.hidden = true;
  const elsewhere = panel.appendChild(el('div', 'ccc-widget-elsewhere'));
  elsewhere.append(el('p', '', 'The softphone is open in another tab of this CRM.'));
  const takeOver = elsewhere.appendChild(el('button', 'ccc-widget-takeover', 'Use it here'));
  takeOver.type = 'button';
  const toast = root.appendChild(el('div', 'ccc-widget-toast'));
  toast.id = 'ccc-softphone-toast';
  toast.setAttribute('role', 'status');
  toast.setAttribute('aria-live', 'polite');
  let frame = null;
  let toastTimer = null;

  function render() {
    const holder = state.role === 'holder';
    root.classList.toggle('ccc-holder', holder);
    root.classList.toggle('ccc-elsewhere', state.role === 'elsewhere');
    root.classList.toggle('ccc-busy', holder && state.busy);
    root.classList.toggle('ccc-signed-out', holder && state.signedIn === false);
    let label = 'Softphone';
    if (state.role === 'elsewhere') label = 'Softphone open in another tab';
    else if (holder && state.busy) label = 'Softphone · in a call';
    else if (holder && state.signedIn === false) label = 'Softphone · signed out';
    button.textContent = label;
    elsewhere.hidden = state.role !== 'elsewhere';
  }

  function setOpen(open) {
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    session(OPEN_KEY, open ? '1' : null);
  }

  function say(text) {
    toast.textContent = text;
    toast.classList.add('ccc-widget-toast-shown');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toast.classList.remove('ccc-widget-toast-shown'), 5000);
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
      frame.title = 'Softphone';
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
    Object.assign(state, { ready: false, signedIn: null, busy: false });
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

  function newer(atA, idA, atB, idB) {
    return atA > atB || (atA === atB && idA > idB);
  }

  function onBus(m) {
    if (!m || typeof m.type !== 'string' || m.id === id) return;
    const holder = state.role === 'holder';
    if (m.type === 'query' && holder) {
      post({ type: 'holder', id, at: state.claimedAt, busy: state.busy, to: m.id });
    } else if (m.type === 'claim' || m.type === 'holder') {
      if (m.type === 'holder' && m.to && m.to !== id && !holder) return;
      const keep = holder && (state.busy && !m.busy
        || !m.busy && newer(state.claimedAt, id, m.at, m.id));
      if (keep) post({ type: 'holder', id, at: state.claimedAt, busy: state.busy, to: m.id });
      else yieldTo(m.id);
      flushQueue();
    } else if (m.type === 'released' && state.role === 'elsewhere' && state.holderId === m.id) {
      state.holderId = null;
      setTimeout(discover, RECLAIM_PAUSE_MS + Math.random() * 500);
    } else if (m.type === 'dial' && holder && m.to === id && typeof m.number === 'string') {
      post({ type: 'dial-ack', id, to: m.id, number: m.number });
      say('Calling ' + m.number + '… (from another tab)');
      dialHere(m.number);
    } else if (m.type === 'dial-ack' && m.to === id) {
      clearTimeout(state.ackTimer);
      say('Calling ' + m.number + '… (on the softphone in the other tab)');
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
    say('Calling ' + number + '…');
    if (state.role === 'holder') return dialHere(number);
    if (state.role === 'undecided') {
      state.queue.push(number);
      return undefined;
    }
    if (!state.holderId) {
      if (!topLevel) return say('Open the softphone in a CRM tab first.');
      state.queue.push(number);
      return discover();
    }
    post({ type: 'dial', id, to: state.holderId, number });
    clearTimeout(state.ackTimer);
    // The other tab may have crashed without saying "released": take the softphone here.
    state.ackTimer = setTimeout(() => {
      if (!topLevel) return say('The softphone tab did not answer.');
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
    if (number === null) say('Not a phone number the softphone can call.');
    else dial(number);
  }, true);

  // ---- messages from the softphone frame ----

  function screenPop(m) {
    if (typeof m.url !== 'string' || !m.url.startsWith('/') || m.url.startsWith('//')) return;
    const target = new URL(m.url, ORIGIN);
    if (target.origin !== ORIGIN) return; // the template is a CRM path; never leave the origin
    say('Incoming call from ' + String(m.caller || '') + '.');
    if (m.target === 'new-tab') {
      const opened = window.open(target.href, '_blank');
      if (opened) opened.opener = null;
      else say('Incoming call from ' + m.caller + ': allow pop-ups to open the customer page.');
    } else {
      window.location.assign(target.href);
    }
  }

  window.addEventListener('message', (event) => {
    if (event.origin !== ORIGIN || !frame || event.source !== frame.contentWindow) return;
    const m = event.data;
    if (!m || typeof m.type !== 'string') return;
    if (m.type === 'ccc:state') {
      state.signedIn = Boolean(m.signedIn);
      state.busy = Boolean(m.busy);
      const first = !state.ready;
      state.ready = true;
      render();
      if (first) for (const number of state.queue.splice(0)) dialHere(number);
    } else if (m.type === 'ccc:screen-pop') {
      screenPop(m);
    } else if (m.type === 'ccc:call-result' && !m.ok) {
      setOpen(true);
      say(m.reason === 'SignedOut'
        ? 'Sign in to Alibaba Cloud in the softphone to call ' + (m.number || '') + '.'
        : 'The call did not start: ' + (m.message || m.reason) + '.');
    } else if (m.type === 'ccc:show') {
      setOpen(true);
    }
  });

  button.addEventListener('click', () => setOpen(panel.hidden));
  takeOver.addEventListener('click', () => becomeHolder());
  window.addEventListener('pagehide', () => {
    if (state.role === 'holder') post({ type: 'released', id });
  });

  function start() {
    if (!topLevel) {
      // A CRM page inside a frame: no dock of its own, it forwards clicks to the holder tab.
      discover();
      return;
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
