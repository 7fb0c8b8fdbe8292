/*
 * Stand-in for Alibaba Cloud Call Center's workbench SDK (workbenchSdk.js), served by the
 * ccc-gateway emulator at /_emulator/sdk/workbenchSdk.js.
 *
 * Same constructor options, events, methods and status codes as the real SDK
 * (docs/softphone.md) and the same ajax contract towards the CRM's server, so a softphone
 * page written for Alibaba runs unchanged. The calls themselves travel as small JSON messages
 * over a websocket to the emulator's /webrtc instead of SIP/WebRTC, and the audio is
 * simulated: it never asks for a microphone.
 *
 * Plain modern JavaScript with no dependencies; no eval, no innerHTML, no inline handlers or
 * style attributes, so it runs under a strict Content-Security-Policy.
 */
(function () {
  'use strict';

  const S = Object.freeze({
    UNREGISTERED: -1, REGISTERING: 0, SIGNED_OUT: 1, SIGNED_IN: 2, READY: 3, BREAK: 4,
    AFTER_CALL: 5, RINGING: 6, DIALING: 8, INBOUND: 9, OUTBOUND: 10, HOLD: 12,
  });
  const STATUS_TEXT = {
    '-1': 'Not registered', 0: 'Registering…', 1: 'Signed out', 2: 'Signed in', 3: 'Ready',
    4: 'On break', 5: 'After-call work', 6: 'Ringing', 8: 'Dialing…', 9: 'Inbound call',
    10: 'Outbound call', 12: 'On hold',
  };
  const IDLE = [S.SIGNED_IN, S.READY, S.BREAK, S.AFTER_CALL]; // states a call may start from
  const IN_CALL = [S.RINGING, S.DIALING, S.INBOUND, S.OUTBOUND, S.HOLD];
  const BACKOFF_MS = [1000, 2000, 5000, 10000, 30000];
  const CLOSE_BAD_TOKEN = 4401;
  const CLOSE_REPLACED = 4409;
  const NUMBER = /^\+?[0-9*#]{1,32}$/;
  const DTMF = /^[0-9*#A-D]{1,32}$/;
  const DEFAULTS = {
    dom: null, instanceId: '', ajaxPath: '', ajaxMethod: 'post', ajaxOrigin: '',
    ajaxApiParamName: 'action', ajaxOtherParams: {}, ajaxHeaders: {}, withCredentials: false,
    header: true, autoAnswerCall: false, width: null, height: null, defaultVisible: true,
  };

  class ApiError extends Error {
    constructor(api, code, message, requestId, transient) {
      super(message);
      Object.assign(this, { api, code, requestId, transient });
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(label, onClick) {
    const node = el('button', 'wbsdk-btn', label);
    node.type = 'button';
    node.setAttribute('aria-label', label);
    node.addEventListener('click', onClick);
    return node;
  }

  function size(value) {
    return typeof value === 'number' ? value + 'px' : String(value);
  }

  class WorkbenchSdk {
    constructor(options) {
      this.options = Object.assign({}, DEFAULTS, options || {});
      this._status = S.UNREGISTERED;
      this._run = 0; // bumped by restart()/destroy() so answers of an older run are ignored
      this._ws = null;
      this._retries = 0;
      this._retryTimer = null;
      this._loginInfo = {};
      this._skillGroups = [];
      this._outboundNumbers = [];
      this._calls = new Map(); // connid -> {connid, caller, callee, contactId, ...}
      this._active = null; // connid of the call the agent is handling
      this._dialRef = null; // a call() the emulator has not confirmed yet
      this._cancelDial = false;
      this._idleStatus = S.READY; // where to return when the call is over
      this._wantLoggedIn = true;
      this._ui = this._render();
      // Deferred so `const sdk = new WorkbenchSdk(...)` is assigned before onInit runs.
      setTimeout(() => {
        this._emit('onInit');
        this._start();
      }, 0);
    }

    // ---- public methods (the real SDK's names) ----

    getStatusCode() { return this._status; }

    changeVisible(visible) { this._ui.root.hidden = !visible; }

    /** Start over: re-fetch login info and reconnect, e.g. after the user signed in again. */
    restart() {
      this._retries = 0;
      this._start();
    }

    /** Disconnect and remove the UI; the instance is unusable afterwards. */
    destroy() {
      this._run += 1;
      clearTimeout(this._retryTimer);
      this._closeSocket();
      this._ui.root.replaceChildren();
    }

    register(skillGroups) {
      if (Array.isArray(skillGroups)) this._selectedGroups = skillGroups.slice();
      if (this._status === S.SIGNED_OUT) this.logIn();
      else if (this._status === S.UNREGISTERED) this.restart();
    }

    logIn() {
      if (this._status !== S.SIGNED_OUT) return this._refuse('logIn', 'InvalidState');
      this._wantLoggedIn = true;
      this._setStatus(S.SIGNED_IN, { reason: 'logIn' });
      this._emit('onLogIn');
      this._setStatus(S.READY, { reason: 'logIn' });
      this._emit('onReady', 'logIn');
    }

    logOut() {
      if (IN_CALL.includes(this._status)) return this._refuse('logOut', 'InCall');
      if (!IDLE.includes(this._status)) return this._refuse('logOut', 'InvalidState');
      this._wantLoggedIn = false;
      this._setStatus(S.SIGNED_OUT, { reason: 'logOut' });
      this._emit('onLogOut');
    }

    ready() {
      if (![S.SIGNED_IN, S.BREAK, S.AFTER_CALL].includes(this._status)) {
        return this._refuse('ready', 'InvalidState');
      }
      this._setStatus(S.READY, { reason: 'ready' });
      this._emit('onReady', 'ready');
    }

    applyForBreak(id, name) {
      if (![S.SIGNED_IN, S.READY, S.AFTER_CALL].includes(this._status)) {
        return this._refuse('applyForBreak', 'InvalidState');
      }
      this._setStatus(S.BREAK, { breakId: id, breakName: name });
      this._emit('onBreak', id, name);
    }

    call(callee, caller) {
      const number = String(callee === undefined || callee === null ? '' : callee)
        .replace(/[\s()-]/g, '');
      if (!this._ws || !IDLE.includes(this._status)) {
        const code = IN_CALL.includes(this._status) ? 'Busy' : 'NotReady';
        return this._refuse('call', code);
      }
      if (!NUMBER.test(number)) return this._refuse('call', 'InvalidCallee');
      const from = caller || this._outboundNumbers[0] || '';
      this._idleStatus = this._status;
      this._dialRef = 'dial-' + Date.now() + '-' + Math.random().toString(36).slice(2, 8);
      this._cancelDial = false;
      this._setStatus(S.DIALING, { callee: number });
      this._send({ type: 'call', callee: number, caller: from, ref: this._dialRef });
    }

    answer() {
      const ringing = this._ringingCalls();
      if (ringing.length === 0) return this._refuse('answer', 'NoRingingCall');
      const target = ringing.find((c) => c.connid === this._active) || ringing[0];
      if (this._active && this._active !== target.connid) {
        // Answering a waiting call ends the current one, like "end and answer" on a desk phone.
        this._send({ type: 'hangup', connid: this._active });
        this._active = target.connid;
      }
      this._send({ type: 'answer', connid: target.connid });
    }

    hangUp() {
      if (this._active) return this._send({ type: 'hangup', connid: this._active });
      if (this._dialRef) {
        this._cancelDial = true; // hang up as soon as the emulator names the call
        return;
      }
      this._refuse('hangUp', 'NoCall');
    }

    sendDtmf(digits) {
      const call = this._calls.get(this._active);
      const text = String(digits === undefined || digits === null ? '' : digits);
      if (!call || call.state !== 'talking') return this._refuse('sendDtmf', 'NoCall');
      if (!DTMF.test(text)) return this._refuse('sendDtmf', 'InvalidDigits');
      this._send({ type: 'dtmf', connid: call.connid, digits: text });
    }

    callHold() {
      if (![S.INBOUND, S.OUTBOUND].includes(this._status)) return this._refuse('callHold', 'NoCall');
      this._send({ type: 'hold', connid: this._active });
    }

    callRetrieve() {
      if (this._status !== S.HOLD) return this._refuse('callRetrieve', 'NotOnHold');
      this._send({ type: 'retrieve', connid: this._active });
    }

    // ---- start-up, ajax and the websocket ----

    async _start() {
      const run = ++this._run;
      clearTimeout(this._retryTimer);
      this._closeSocket();
      this._setStatus(S.REGISTERING, { reason: 'start' });
      this._note('Connecting to the call center…');
      const id = { instanceId: this.options.instanceId };
      try {
        const login = await this._api('RequestLoginInfo', id);
        const groups = await this._api('ListSkillGroupsOfUser', id);
        const numbers = await this._api('ListOutboundPhoneNumberOfUser', id);
        if (run !== this._run) return;
        this._loginInfo = login.loginInfo || {};
        this._skillGroups = (groups.skillLevels || []).map((level) => ({
          skillGroupId: level.skill && level.skill.skillGroupId,
          skillGroupName: level.skill && level.skill.skillGroupName,
          level: level.level,
        }));
        this._outboundNumbers = numbers.numberList
          || (numbers.outboundPhoneNumbers || []).map((n) => n.number);
        this._ui.agent.textContent = this._loginInfo.displayName || this._loginInfo.userName || '';
        this._connect(run, this._loginInfo);
      } catch (err) {
        if (run === this._run) this._failed(run, err, () => this._start());
      }
    }

    async _reconnect(run) {
      try {
        const answer = await this._api('RefreshToken', { instanceId: this.options.instanceId });
        if (run !== this._run) return;
        this._setStatus(S.REGISTERING, { reason: 'reconnect' });
        this._connect(run, answer.token || {});
      } catch (err) {
        if (run === this._run) this._failed(run, err, () => this._reconnect(run));
      }
    }

    async _api(name, params) {
      const o = this.options;
      const fields = new URLSearchParams({ request: JSON.stringify(params) });
      for (const [key, value] of Object.entries(o.ajaxOtherParams || {})) fields.set(key, value);
      let url = (o.ajaxOrigin || '') + o.ajaxPath;
      url += (url.includes('?') ? '&' : '?')
        + encodeURIComponent(o.ajaxApiParamName || 'action') + '=' + encodeURIComponent(name);
      // As the real SDK: an XMLHttpRequest, POST with a urlencoded `request=<JSON>` unless
      // ajaxMethod is 'get', carrying every header given in ajaxHeaders.
      const method = String(o.ajaxMethod).toLowerCase() === 'get' ? 'GET' : 'POST';
      if (method === 'GET') url += '&' + fields.toString();
      let answer;
      try {
        answer = await new Promise((resolve, reject) => {
          const xhr = new XMLHttpRequest();
          xhr.open(method, url);
          xhr.withCredentials = Boolean(o.withCredentials);
          if (method === 'POST') {
            xhr.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
          }
          for (const [key, value] of Object.entries(o.ajaxHeaders || {})) {
            xhr.setRequestHeader(key, String(value));
          }
          xhr.onload = () => resolve(xhr);
          xhr.onerror = () => reject(new Error('network error'));
          xhr.ontimeout = () => reject(new Error('timed out'));
          xhr.send(method === 'POST' ? fields.toString() : null);
        });
      } catch (err) {
        throw this._apiError(name, 'NetworkError', String(err && err.message || err), '', true);
      }
      let body = null;
      try {
        body = JSON.parse(answer.responseText);
      } catch (err) {
        body = null;
      }
      const ok = answer.status >= 200 && answer.status < 300;
      if (ok && body && typeof body === 'object' && body.success !== false) return body;
      const b = body && typeof body === 'object' ? body : {};
      throw this._apiError(
        name,
        b.errorCode || b.code || 'HTTP' + answer.status,
        b.message || b.errorMsg || answer.statusText || 'Request failed',
        b.requestId || '',
        answer.status >= 500 || answer.status === 408 || answer.status === 429,
      );
    }

    _apiError(api, code, message, requestId, transient) {
      this._emit('onErrorNotify', { errorApi: api, errorCode: code, errorMsg: message, requestId });
      return new ApiError(api, code, message, requestId, transient);
    }

    _failed(run, err, retry) {
      this._dropCalls('disconnect');
      this._setStatus(S.UNREGISTERED, { reason: err.code || 'error' });
      if (err.transient) return this._retryLater(run, retry, 'Call center unreachable');
      const why = err.code === 'NotAuthenticated'
        ? 'Signed out of Alibaba Cloud: sign in again.'
        : 'Could not start: ' + (err.message || err.code) + '.';
      this._note(why, true);
    }

    _retryLater(run, retry, why) {
      const delay = BACKOFF_MS[Math.min(this._retries, BACKOFF_MS.length - 1)];
      this._retries += 1;
      this._note(why + '; retrying in ' + Math.round(delay / 1000) + ' s…');
      clearTimeout(this._retryTimer);
      this._retryTimer = setTimeout(() => { if (run === this._run) retry(); }, delay);
    }

    _connect(run, token) {
      let ws;
      try {
        ws = new WebSocket(this._loginInfo.webRtcUrl);
      } catch (err) {
        this._emit('onErrorNotify', {
          errorApi: 'webrtc', errorCode: 'BadWebRtcUrl', errorMsg: String(err), requestId: '',
        });
        return this._failed(run, { code: 'BadWebRtcUrl', transient: false, message: 'bad URL' });
      }
      this._ws = ws;
      // The token goes in the first message, not the URL, so it stays out of access logs.
      ws.addEventListener('open', () => {
        ws.send(JSON.stringify({
          type: 'register', signData: token.signData, signature: token.signature,
        }));
      });
      ws.addEventListener('message', (event) => {
        if (ws !== this._ws) return;
        let message;
        try { message = JSON.parse(event.data); } catch (err) { return; }
        if (message && typeof message.type === 'string') this._onMessage(run, message);
      });
      ws.addEventListener('close', (event) => {
        if (ws !== this._ws) return; // closed on purpose by restart()/destroy()
        this._ws = null;
        this._onSocketClosed(run, event.code);
      });
    }

    _closeSocket() {
      const ws = this._ws;
      this._ws = null;
      if (ws) ws.close(1000, 'client restart');
      this._dropCalls('disconnect');
    }

    _onSocketClosed(run, code) {
      this._dropCalls('disconnect');
      this._setStatus(S.UNREGISTERED, { reason: 'disconnected', code });
      if (code === CLOSE_REPLACED) {
        this._emit('onErrorNotify', {
          errorApi: 'webrtc', errorCode: 'Replaced',
          errorMsg: 'The softphone was opened in another window.', requestId: '',
        });
        return this._note('Softphone active in another window.', true);
      }
      if (code === CLOSE_BAD_TOKEN) {
        this._emit('onErrorNotify', {
          errorApi: 'webrtc', errorCode: 'InvalidToken',
          errorMsg: 'The call center refused the login token.', requestId: '',
        });
      }
      this._retryLater(run, () => this._reconnect(run), 'Connection lost');
    }

    _send(message) {
      if (this._ws && this._ws.readyState === WebSocket.OPEN) {
        this._ws.send(JSON.stringify(message));
      } else {
        this._refuse(message.type, 'NotConnected');
      }
    }

    // ---- what the emulator tells us ----

    _onMessage(run, m) {
      const call = this._calls.get(m.connid);
      switch (m.type) {
        case 'registered': return this._onRegistered(m);
        case 'dialing': return this._onDialing(m);
        case 'incoming': return this._onIncoming(m);
        case 'established': return call && this._onEstablished(call);
        case 'released': return call && this._onReleased(call, m.reason || 'remote');
        case 'held': return call && this._setStatus(S.HOLD, { connid: call.connid });
        case 'retrieved':
          return call && this._setStatus(this._talkingStatus(call), { connid: call.connid });
        case 'error': return this._onError(m);
        default: return undefined; // pong, dtmfSent, replaced (the close that follows says it)
      }
    }

    _onRegistered(m) {
      this._retries = 0;
      this._note('');
      if (!this._ui.agent.textContent && m.agent) this._ui.agent.textContent = m.agent.displayName;
      this._setStatus(S.SIGNED_OUT, { reason: 'register' });
      this._emit('onRegister', {
        agent: m.agent, loginInfo: this._loginInfo,
        skillGroups: this._skillGroups, outboundNumbers: this._outboundNumbers.slice(),
      });
      if (this._wantLoggedIn) this.logIn();
    }

    _onDialing(m) {
      if (m.ref !== this._dialRef) return;
      this._dialRef = null;
      const call = Object.assign({ direction: 'outbound', state: 'dialing' }, this._pick(m));
      this._calls.set(call.connid, call);
      this._active = call.connid;
      this._emit('onCallDialing', call.connid, call.caller, call.callee, call.contactId);
      this._renderCalls();
      if (this._cancelDial) this.hangUp();
    }

    _onIncoming(m) {
      const call = Object.assign({ direction: 'inbound', state: 'ringing' }, this._pick(m));
      if (!IDLE.includes(this._status) && !IN_CALL.includes(this._status)) {
        // Not logged in: reject it unseen (its `released` finds no call and is ignored).
        return this._send({ type: 'hangup', connid: call.connid });
      }
      this._calls.set(call.connid, call);
      this._emit('onCallComing', call.connid, call.caller, call.callee, call.contactId,
        call.skillgroupId);
      if (this._active || this._dialRef) return this._renderCalls(); // waiting behind a call
      this._ring(call);
    }

    _ring(call) {
      this._idleStatus = IDLE.includes(this._status) ? this._status : this._idleStatus;
      this._active = call.connid;
      this._setStatus(S.RINGING, { connid: call.connid, caller: call.caller });
      if (this.options.autoAnswerCall) this.answer();
    }

    _onEstablished(call) {
      call.state = 'talking';
      if (call.connid !== this._active) return this._renderCalls();
      this._setStatus(this._talkingStatus(call), { connid: call.connid });
      this._emit('onCallEstablish', call.connid, call.caller, call.callee, call.contactId);
    }

    _onReleased(call, reason) {
      this._calls.delete(call.connid);
      this._emit('onCallRelease', call.connid, call.caller, call.callee, call.contactId);
      this._emit('onHangUp', reason);
      if (call.connid !== this._active) return this._renderCalls();
      this._active = null;
      const next = this._ringingCalls()[0];
      if (next) return this._ring(next);
      this._setStatus(this._idleStatus, { reason });
    }

    _onError(m) {
      this._emit('onErrorNotify', {
        errorApi: 'webrtc', errorCode: m.code, errorMsg: m.message, requestId: '',
      });
      if (m.ref !== undefined && m.ref === this._dialRef) {
        this._dialRef = null;
        this._setStatus(this._idleStatus, { reason: m.code });
      }
    }

    _dropCalls(reason) {
      const calls = Array.from(this._calls.values());
      this._calls.clear();
      this._active = null;
      this._dialRef = null;
      for (const call of calls) {
        this._emit('onCallRelease', call.connid, call.caller, call.callee, call.contactId);
        this._emit('onHangUp', reason);
      }
      this._renderCalls();
    }

    _pick(m) {
      return {
        connid: String(m.connid), caller: String(m.caller || ''), callee: String(m.callee || ''),
        contactId: String(m.contactId || m.connid), skillgroupId: String(m.skillgroupId || ''),
      };
    }

    _ringingCalls() {
      return Array.from(this._calls.values()).filter((c) => c.state === 'ringing');
    }

    _talkingStatus(call) {
      return call.direction === 'outbound' ? S.OUTBOUND : S.INBOUND;
    }

    _refuse(api, code) {
      this._emit('onErrorNotify', {
        errorApi: api, errorCode: code, errorMsg: api + ' is not possible now (' + code + ')',
        requestId: '',
      });
    }

    _setStatus(code, context) {
      if (code === this._status) return this._renderCalls();
      const last = this._status;
      this._status = code;
      this._ui.root.dataset.status = String(code);
      this._ui.statusText.textContent = STATUS_TEXT[code] || String(code);
      this._renderCalls();
      this._emit('onStatusChange', code, last, context || {});
    }

    _emit(name, ...args) {
      const handler = this.options[name];
      if (typeof handler !== 'function') return;
      try {
        handler.apply(this, args);
      } catch (err) {
        // A broken page callback must not leave the softphone half-way through a transition.
        console.error('WorkbenchSdk: ' + name + ' handler failed', err);
      }
    }

    // ---- the UI ----

    _render() {
      const o = this.options;
      let root = typeof o.dom === 'string' ? document.getElementById(o.dom) : o.dom;
      if (!root) root = document.body.appendChild(el('div'));
      const ui = { root };
      root.classList.add('wbsdk');
      root.setAttribute('role', 'region');
      root.setAttribute('aria-label', 'Softphone');
      root.dataset.status = String(this._status);
      if (o.width !== null && o.width !== undefined) root.style.width = size(o.width);
      if (o.height !== null && o.height !== undefined) root.style.height = size(o.height);
      root.hidden = o.defaultVisible === false;
      const header = el('div', 'wbsdk-header');
      header.append(el('span', 'wbsdk-title', 'Softphone'));
      ui.agent = header.appendChild(el('span', 'wbsdk-agent'));
      header.hidden = !o.header;
      const status = el('div', 'wbsdk-status');
      status.setAttribute('role', 'status');
      status.append(el('span', 'wbsdk-dot'));
      ui.statusText = status.appendChild(el('span', 'wbsdk-status-text', STATUS_TEXT[-1]));
      ui.note = el('div', 'wbsdk-note');
      ui.note.setAttribute('aria-live', 'polite');
      ui.ringing = el('div', 'wbsdk-ringing');
      ui.ringing.append(el('span', '', 'Incoming call from '));
      ui.ringingCaller = ui.ringing.appendChild(el('strong', 'wbsdk-caller'));
      ui.peer = el('div', 'wbsdk-peer');
      ui.waiting = el('div', 'wbsdk-waiting');
      const dial = el('form', 'wbsdk-dial');
      ui.number = dial.appendChild(el('input', 'wbsdk-number'));
      ui.number.type = 'tel';
      ui.number.placeholder = 'Phone number';
      ui.number.setAttribute('aria-label', 'Number to call');
      ui.callBtn = dial.appendChild(el('button', 'wbsdk-btn wbsdk-call', 'Call'));
      ui.callBtn.type = 'submit';
      dial.addEventListener('submit', (event) => {
        event.preventDefault();
        this.call(ui.number.value);
      });
      const actions = el('div', 'wbsdk-actions');
      ui.answerBtn = actions.appendChild(button('Answer', () => this.answer()));
      ui.answerBtn.classList.add('wbsdk-answer');
      ui.hangUpBtn = actions.appendChild(button('Hang up', () => this.hangUp()));
      ui.hangUpBtn.classList.add('wbsdk-hangup');
      ui.holdBtn = actions.appendChild(button('Hold', () => (
        this._status === S.HOLD ? this.callRetrieve() : this.callHold())));
      ui.breakBtn = actions.appendChild(button('Break', () => (
        this._status === S.BREAK ? this.ready() : this.applyForBreak('', 'Break'))));
      ui.retryBtn = actions.appendChild(button('Reconnect', () => this.restart()));
      ui.retryBtn.hidden = true; // only offered once the SDK has given up retrying by itself
      root.replaceChildren(header, status, ui.note, ui.ringing, ui.peer, ui.waiting, dial, actions);
      this._ui = ui;
      this._renderCalls();
      return ui;
    }

    _note(text, stopped) {
      this._ui.note.textContent = text;
      this._ui.retryBtn.hidden = !stopped;
    }

    _renderCalls() {
      const ui = this._ui;
      if (!ui) return;
      const active = this._calls.get(this._active);
      const ringing = this._status === S.RINGING && active;
      const waiting = this._ringingCalls().filter((c) => c.connid !== this._active);
      ui.ringing.hidden = !ringing;
      ui.ringingCaller.textContent = ringing ? active.caller : '';
      const verb = { 8: 'Calling ', 9: 'Talking to ', 10: 'Talking to ', 12: 'On hold: ' };
      const peer = active && active.direction === 'outbound' ? active.callee : active && active.caller;
      ui.peer.hidden = !active || ringing;
      ui.peer.textContent = active && !ringing ? (verb[this._status] || '') + peer : '';
      ui.waiting.hidden = waiting.length === 0;
      ui.waiting.textContent = waiting.length
        ? 'Waiting: ' + waiting.map((c) => c.caller).join(', ') : '';
      ui.answerBtn.hidden = this._ringingCalls().length === 0;
      ui.hangUpBtn.disabled = !IN_CALL.includes(this._status);
      ui.holdBtn.hidden = ![S.INBOUND, S.OUTBOUND, S.HOLD].includes(this._status);
      ui.holdBtn.textContent = this._status === S.HOLD ? 'Resume' : 'Hold';
      ui.holdBtn.setAttribute('aria-label', ui.holdBtn.textContent);
      ui.breakBtn.hidden = ![S.SIGNED_IN, S.READY, S.BREAK].includes(this._status);
      ui.breakBtn.textContent = this._status === S.BREAK ? 'Ready' : 'Break';
      ui.breakBtn.setAttribute('aria-label', ui.breakBtn.textContent);
      ui.callBtn.disabled = !IDLE.includes(this._status);
    }
  }

  WorkbenchSdk.STATUS = S;
  window.WorkbenchSdk = WorkbenchSdk;
})();
