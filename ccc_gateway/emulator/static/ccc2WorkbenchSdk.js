/*
 * Stand-in for Alibaba Cloud Call Center 2.0's browser SDK (web-workbench-sdk 2.x and 3.x),
 * served by the ccc-gateway emulator as /_emulator/sdk/workbenchSdk2.js (2.x:
 * `new window.WorkbenchSdk({dom, instanceId, regionId, ajaxPath, ...})`) and
 * /_emulator/sdk/cccWorkbenchSdk.js (3.x: `new window.CCCWorkbenchSDK({...})`). The server
 * fills in GENERATION below; everything else is shared (docs/emulator.md).
 *
 * Like the real SDK it drives calls through the CCC 2.0 OpenAPI via the page's backend:
 * POST `${ajaxOrigin}${ajaxPath}?action=<Api>&product=CloudCallCenter&version=2020-07-01&
 * region=<regionId>` with a urlencoded `request=<JSON>` body and the `ajaxHeaders`, and reads
 * POP's JSON answer as is (`Code`, `Message`, `RequestId`, `Data`). Call events (ringing,
 * answered, ended) come over a websocket to the emulator's `GetLoginDetails.AgentServerUrl`
 * instead of SIP/WebRTC; the audio is simulated: it never asks for a microphone.
 *
 * Plain modern JavaScript with no dependencies; no eval, no innerHTML, no inline handlers or
 * style attributes, so it runs under a strict Content-Security-Policy.
 */
(function () {
  'use strict';

  const GENERATION = '__GENERATION__'; // '2.x' or '3.x', set by the emulator when serving
  const VERSION = '2020-07-01';
  const S = Object.freeze({
    UNREGISTERED: -1, REGISTERING: 0, OFFLINE: 1, BREAK: 2, IDLE: 3, AFTER_CALL: 5,
    RINGING: 6, DIALING: 8, INBOUND: 9, OUTBOUND: 10, HOLD: 12,
  });
  const STATUS_TEXT = {
    '-1': 'Not registered', 0: 'Registering…', 1: 'Offline', 2: 'On break', 3: 'Ready',
    5: 'After-call work', 6: 'Ringing', 8: 'Dialing…', 9: 'Inbound call', 10: 'Outbound call',
    12: 'On hold',
  };
  const IDLE = [S.BREAK, S.IDLE]; // a call may start from here
  const IN_CALL = [S.RINGING, S.DIALING, S.INBOUND, S.OUTBOUND, S.HOLD];
  const BACKOFF_MS = [1000, 2000, 5000, 10000, 30000];
  const CLOSE_REPLACED = 4409;
  const NUMBER = /^\+?[0-9*#]{1,32}$/;
  const NOT_NOW = 9001; // the SDK's "API not allowed in the current state"
  // Agent-scoped actions carry the agent's own UserId (from GetLoginDetails), as the workbench
  // knows it; the gateway pins it to the signed-in agent.
  const WITH_USER_ID = new Set([
    'ListSkillLevelsOfUser', 'SignInGroup', 'SignOutGroup', 'TakeBreak', 'ReadyForService',
    'MakeCall', 'AnswerCall', 'ReleaseCall', 'HoldCall', 'RetrieveCall', 'MuteCall', 'UnmuteCall',
    'SendDtmfSignaling', 'BlindTransfer',
  ]);
  const DEFAULTS = {
    dom: null, instanceId: '', regionId: 'cn-shanghai', ajaxOrigin: '', ajaxPath: '/data/api.json',
    ajaxApiParamName: 'action', ajaxMethod: 'post', ajaxOtherParams: {}, ajaxHeaders: {},
    withCredentials: false, header: true, width: null, height: null, defaultVisible: true,
    autoAnswerCall: false, afterCallRule: null,
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

  function button(label, onClick, className) {
    const node = el('button', 'wbsdk-btn' + (className ? ' ' + className : ''), label);
    node.type = 'button';
    node.addEventListener('click', onClick);
    return node;
  }

  function size(value) {
    return typeof value === 'number' ? value + 'px' : String(value);
  }

  function pick(body, ...names) {
    for (const name of names) if (body && body[name] !== undefined) return body[name];
    return undefined;
  }

  class Sdk {
    constructor(options) {
      this.options = Object.assign({}, DEFAULTS, options || {});
      this._status = S.UNREGISTERED;
      this._lastStatus = S.UNREGISTERED;
      this._run = 0; // bumped by restart()/destroy(): answers of an older run are ignored
      this._ws = null;
      this._retries = 0;
      this._retryTimer = null;
      this._login = {}; // GetLoginDetails' Data
      this._groups = []; // [{skillGroupId, skillGroupName, skillLevel}]
      this._deviceId = 'STANDIN-' + Math.random().toString(16).slice(2, 14);
      this._calls = new Map(); // jobId -> {jobId, caller, callee, callType, state, channelId, callContext}
      this._early = new Map(); // events of a job whose MakeCall answer has not arrived yet
      this._active = null; // the jobId the agent is handling
      this._dialing = false; // a call() waiting for MakeCall's answer
      this._cancelDial = false;
      this._idleStatus = S.IDLE; // where the agent returns after a call
      this._ui = this._render();
      // Deferred so `const sdk = new ...(...)` is assigned before onInit runs.
      setTimeout(() => this._emit('onInit'), 0);
    }

    // ---- public methods (the names of the 2.x documentation; 3.x assumed the same) ----

    isAvailBroswer() { return true; }

    getStatusCode() { return { code: this._status, lastCode: this._lastStatus }; }

    changeVisible(visible) { this._ui.root.hidden = !visible; }

    reRender() { this._ui = this._render(); }

    /** First sign-in: connect the softphone, SignInGroup, ReadyForService. */
    register(loginSkillGroupArray) {
      if (this._status !== S.UNREGISTERED) return this._refuse('register');
      if (Array.isArray(loginSkillGroupArray)) this._groups = loginSkillGroupArray.slice();
      this._retries = 0;
      this._start();
    }

    /** Start over (e.g. after the user signed in again); not in the real SDK. */
    restart() {
      this._retries = 0;
      this._start();
    }

    /** Disconnect and remove the UI; not in the real SDK. */
    destroy() {
      this._run += 1;
      clearTimeout(this._retryTimer);
      this._closeSocket();
      this._ui.root.replaceChildren();
    }

    async logIn(loginSkillGroupArray) {
      if (this._status !== S.OFFLINE) return this._refuse('logIn');
      if (Array.isArray(loginSkillGroupArray)) this._groups = loginSkillGroupArray.slice();
      await this._signIn(this._run);
    }

    async logOut() {
      if (!IDLE.includes(this._status)) return this._refuse('logOut');
      if (await this._try('SignOutGroup', { DeviceId: this._deviceId })) {
        this._setStatus(S.OFFLINE, { reason: 'logOut' });
        this._emit('onLogOut');
      }
    }

    async ready() {
      if (![S.BREAK, S.AFTER_CALL].includes(this._status)) return this._refuse('ready');
      if (await this._try('ReadyForService', { DeviceId: this._deviceId })) {
        this._setStatus(S.IDLE, { reason: 'ready' });
        this._emit('onReady');
      }
    }

    async applyForBreak(breakReason) {
      if (![S.IDLE, S.AFTER_CALL].includes(this._status)) return this._refuse('applyForBreak');
      const code = breakReason || 'default';
      if (await this._try('TakeBreak', { Code: code, DeviceId: this._deviceId })) {
        this._setStatus(S.BREAK, { breakCode: code });
        this._emit('onBreak');
      }
    }

    call(callee, caller) {
      const number = String(callee === undefined || callee === null ? '' : callee)
        .replace(/[\s()-]/g, '');
      if (!IDLE.includes(this._status) || this._dialing) return this._refuse('call');
      if (!NUMBER.test(number)) {
        return this._notify('NoAvailableCallee', 'Not a number: ' + number, 'call');
      }
      const dial = (chosen) => this._dial(chosen === undefined ? number : String(chosen), caller);
      if (typeof this.options.onBeforeCallDialing === 'function') {
        return this._emit('onBeforeCallDialing', {
          callee: number, userId: this._login.UserId, callback: dial,
        });
      }
      return dial();
    }

    async answer() {
      const call = this._calls.get(this._active);
      if (!call || call.state !== 'ringing') return this._refuse('answer');
      const data = await this._try('AnswerCall', { JobId: call.jobId, DeviceId: this._deviceId });
      if (data) this._absorb(call, data);
    }

    hangUp() {
      const call = this._calls.get(this._active);
      if (!call) {
        if (this._dialing) this._cancelDial = true; // hang up as soon as MakeCall answers
        else this._refuse('hangUp');
        return;
      }
      const release = () => this._try('ReleaseCall', {
        JobId: call.jobId, ChannelId: call.channelId || undefined, DeviceId: this._deviceId,
      });
      if (typeof this.options.onBeforeCallHangup === 'function') {
        return this._emit('onBeforeCallHangup', {
          callback: release, jobId: call.jobId, channelId: call.channelId,
          userId: this._login.UserId,
        });
      }
      return release();
    }

    callHold() { return this._inCall('HoldCall', [S.INBOUND, S.OUTBOUND]); }

    callRetrieve() { return this._inCall('RetrieveCall', [S.HOLD]); }

    muteAgent() { return this._inCall('MuteCall', [S.INBOUND, S.OUTBOUND, S.HOLD]); }

    umMuteAgent() { return this._inCall('UnmuteCall', [S.INBOUND, S.OUTBOUND, S.HOLD]); }

    sendDtmf(digit) {
      return this._inCall('SendDtmfSignaling', [S.INBOUND, S.OUTBOUND], { Dtmf: String(digit) });
    }

    /** Blind transfer to an agent (extension or user id) or a number. */
    thirdCallTransfer(callee, caller) {
      const extra = { Transferee: String(callee || '') };
      if (caller && caller !== 'auto') extra.Transferor = String(caller);
      return this._inCall('BlindTransfer', [S.INBOUND, S.OUTBOUND, S.HOLD], extra);
    }

    async _inCall(api, states, extra) {
      const call = this._calls.get(this._active);
      if (!call || !states.includes(this._status)) return this._refuse(api);
      const params = Object.assign(
        { JobId: call.jobId, ChannelId: call.channelId, DeviceId: this._deviceId }, extra || {});
      const data = await this._try(api, params);
      if (data) this._absorb(call, data);
    }

    // ---- sign-in, ajax and the event socket ----

    async _start() {
      const run = ++this._run;
      clearTimeout(this._retryTimer);
      this._closeSocket();
      this._setStatus(S.REGISTERING, { reason: 'register' });
      this._note('Connecting to the call center…');
      try {
        this._login = (await this._api('GetLoginDetails', {})).Data || {};
        if (this._groups.length === 0) {
          const levels = await this._api('ListSkillLevelsOfUser', { PageNumber: 1, PageSize: 100 });
          this._groups = ((levels.Data || {}).List || []).map((g) => ({
            skillGroupId: g.SkillGroupId, skillGroupName: g.SkillGroupName, skillLevel: g.SkillLevel,
          }));
        }
        await this._api('GetTurnServerList', {});
        if (run !== this._run) return;
        this._ui.agent.textContent = this._login.DisplayName || this._login.UserId || '';
        this._connect(run);
      } catch (err) {
        if (run === this._run) this._failed(run, err);
      }
    }

    _connect(run) {
      let url = String(this._login.AgentServerUrl || '');
      if (!/^wss?:\/\//.test(url)) url = (location.protocol === 'http:' ? 'ws://' : 'wss://') + url;
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (err) {
        return this._failed(run, { code: 'BadAgentServerUrl', message: String(err) });
      }
      this._ws = ws;
      // The registration material goes in the first message, never in the URL (access logs).
      ws.addEventListener('open', () => ws.send(JSON.stringify({
        type: 'register', signData: this._login.UserKey, signature: this._login.Signature,
      })));
      ws.addEventListener('message', (event) => {
        if (ws !== this._ws) return;
        let message;
        try { message = JSON.parse(event.data); } catch (err) { return; }
        if (message && typeof message.type === 'string') this._onMessage(run, message);
      });
      ws.addEventListener('close', (event) => {
        if (ws !== this._ws) return; // closed on purpose
        this._ws = null;
        this._dropCalls();
        this._setStatus(S.UNREGISTERED, { reason: 'disconnected', code: event.code });
        if (event.code === CLOSE_REPLACED) {
          this._notify('8020', 'The softphone was opened in another window.', 'socket');
          return this._note('Softphone active in another window.', true);
        }
        this._retryLater(run);
      });
      return undefined;
    }

    async _signIn(run) {
      try {
        await this._api('SignInGroup', {
          DeviceId: this._deviceId,
          SignedSkillGroupIdList: this._groups.map((g) => g.skillGroupId),
        });
        this._emit('onLogIn');
        await this._api('ReadyForService', { DeviceId: this._deviceId });
        if (run !== this._run) return;
        this._setStatus(S.IDLE, { reason: 'logIn' });
        this._emit('onReady');
      } catch (err) {
        if (run === this._run) this._setStatus(S.OFFLINE, { reason: err.code });
      }
    }

    _url(api, extra) {
      const o = this.options;
      const query = new URLSearchParams();
      query.set(o.ajaxApiParamName || 'action', api);
      query.set('product', 'CloudCallCenter');
      query.set('version', VERSION);
      query.set('region', o.regionId || 'cn-shanghai');
      if (extra) for (const [k, v] of extra) query.set(k, v);
      const path = (o.ajaxOrigin || '') + o.ajaxPath;
      return path + (path.includes('?') ? '&' : '?') + query.toString();
    }

    async _api(api, params) {
      const o = this.options;
      const request = Object.assign({ InstanceId: o.instanceId }, params);
      if (WITH_USER_ID.has(api) && this._login.UserId) request.UserId = this._login.UserId;
      const fields = new URLSearchParams({ request: JSON.stringify(request) });
      for (const [key, value] of Object.entries(o.ajaxOtherParams || {})) fields.set(key, value);
      const method = String(o.ajaxMethod).toLowerCase() === 'get' ? 'GET' : 'POST';
      const url = this._url(api, method === 'GET' ? fields : null);
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
          xhr.send(method === 'POST' ? fields.toString() : null);
        });
      } catch (err) {
        throw this._apiError(api, 'NetworkError', String(err.message || err), '', true);
      }
      let body = null;
      try { body = JSON.parse(answer.responseText); } catch (err) { body = null; }
      const code = pick(body, 'Code', 'code', 'errorCode');
      if (answer.status >= 200 && answer.status < 300 && body && (code === 'OK' || code === '200')) {
        return body;
      }
      throw this._apiError(
        api,
        code || 'HTTP' + answer.status,
        pick(body, 'Message', 'message', 'errorMsg') || answer.statusText || 'Request failed',
        pick(body, 'RequestId', 'requestId') || '',
        answer.status >= 500 || answer.status === 408 || answer.status === 429,
      );
    }

    /** An API call whose failure was already reported via onErrorNotify: its Data, or null. */
    async _try(api, params) {
      try {
        return (await this._api(api, params)).Data || {};
      } catch (err) {
        return null;
      }
    }

    _apiError(api, code, message, requestId, transient) {
      this._notify(code, message, api, requestId);
      return new ApiError(api, code, message, requestId, transient);
    }

    _notify(code, message, api, requestId) {
      this._emit('onErrorNotify', {
        errorCode: code, errorMsg: message, errorMsgTip: message, requestId: requestId || '',
        errorApi: api,
      });
    }

    _refuse(api) {
      this._notify(NOT_NOW, api + ' is not allowed in the current state', api);
    }

    _failed(run, err) {
      this._dropCalls();
      this._setStatus(S.UNREGISTERED, { reason: err.code || 'error' });
      if (err.transient) return this._retryLater(run);
      const why = err.code === 'NotAuthenticated'
        ? 'Signed out of Alibaba Cloud: sign in again.'
        : 'Could not start: ' + (err.message || err.code) + '.';
      return this._note(why, true);
    }

    _retryLater(run) {
      const delay = BACKOFF_MS[Math.min(this._retries, BACKOFF_MS.length - 1)];
      this._retries += 1;
      this._note('Call center unreachable; retrying in ' + Math.round(delay / 1000) + ' s…');
      clearTimeout(this._retryTimer);
      this._retryTimer = setTimeout(() => { if (run === this._run) this._start(); }, delay);
    }

    _closeSocket() {
      const ws = this._ws;
      this._ws = null;
      if (ws) ws.close(1000, 'client restart');
      this._dropCalls();
    }

    // ---- what the emulator tells us ----

    _onMessage(run, m) {
      if (m.type === 'registered') return this._onRegistered(run);
      if (m.type === 'incoming') return this._onIncoming(m);
      const call = this._calls.get(m.connid);
      if (!call) {
        // An event of the call MakeCall is creating: replayed once its answer names the job.
        if (this._dialing && ['established', 'released'].includes(m.type)) {
          this._early.set(String(m.connid), (this._early.get(String(m.connid)) || []).concat([m]));
        }
        return undefined;
      }
      if (m.type === 'established') return this._onEstablished(call);
      if (m.type === 'released') return this._onReleased(call);
      if (m.type === 'held') return this._setStatus(S.HOLD, { jobId: call.jobId });
      if (m.type === 'retrieved') return this._setStatus(this._talking(call), { jobId: call.jobId });
      return undefined;
    }

    async _onRegistered(run) {
      this._retries = 0;
      this._note('');
      this._setStatus(S.OFFLINE, { reason: 'register' });
      this._emit('onRegister', { loginInfo: this._login, skillGroups: this._groups.slice() });
      await this._signIn(run);
    }

    async _dial(callee, caller) {
      this._dialing = true;
      this._cancelDial = false;
      this._idleStatus = this._status;
      this._setStatus(S.DIALING, { callee });
      try {
        let from = caller && caller !== 'auto' ? String(caller) : '';
        if (!from) {
          const pairs = await this._api('PickOutboundNumbers', {
            CalledNumber: callee, SkillGroupIdList: this._groups.map((g) => g.skillGroupId),
          });
          const first = (pairs.Data || [])[0];
          from = first && first.Caller ? first.Caller.Number : '';
        }
        const params = { Callee: callee, DeviceId: this._deviceId };
        if (from) params.Caller = from;
        const data = (await this._api('MakeCall', params)).Data || {};
        this._onDialing(data, from, callee);
      } catch (err) {
        this._dialing = false;
        this._setStatus(this._idleStatus, { reason: err.code });
      }
    }

    _onDialing(data, caller, callee) {
      const context = data.CallContext || {};
      const call = {
        jobId: context.JobId, caller, callee, callType: 'OUTBOUND', state: 'dialing',
        callContext: context, channelId: this._ownChannel(context),
      };
      this._dialing = false;
      this._calls.set(call.jobId, call);
      this._active = call.jobId;
      this._emit('onCallDialing', this._detail(call));
      this._render1();
      const early = this._early.get(call.jobId) || [];
      this._early.clear();
      for (const m of early) this._onMessage(this._run, m);
      if (this._cancelDial && this._calls.has(call.jobId)) this.hangUp();
    }

    _onIncoming(m) {
      const jobId = String(m.connid);
      const context = { CallType: 'INBOUND', InstanceId: this.options.instanceId, JobId: jobId };
      const call = {
        jobId, caller: String(m.caller || ''), callee: String(m.callee || ''),
        callType: 'INBOUND', state: 'ringing', callContext: context, channelId: '',
      };
      this._calls.set(jobId, call);
      this._emit('onCallComing', this._detail(call));
      if (this._active || this._dialing) return this._render1(); // waits behind the current call
      return this._ring(call);
    }

    _ring(call) {
      if (IDLE.includes(this._status)) this._idleStatus = this._status;
      this._active = call.jobId;
      this._setStatus(S.RINGING, { jobId: call.jobId, caller: call.caller });
      const seconds = Number(this.options.autoAnswerCall);
      if (this.options.autoAnswerCall !== false && seconds >= 0) {
        setTimeout(() => { if (this._active === call.jobId) this.answer(); }, seconds * 1000);
      }
    }

    _onEstablished(call) {
      call.state = 'talking';
      if (call.jobId !== this._active) return this._render1();
      this._setStatus(this._talking(call), { jobId: call.jobId });
      return this._emit('onCallEstablish', { callContext: call.callContext });
    }

    _onReleased(call) {
      const type = call.state === 'talking'
        ? call.callType.toLowerCase() : (call.callType === 'INBOUND' ? 'ringing' : 'dialing');
      this._calls.delete(call.jobId);
      this._emit('onHangUp', type);
      this._emit('onCallRelease', { callContext: call.callContext });
      if (call.jobId !== this._active) return this._render1();
      this._active = null;
      const next = Array.from(this._calls.values()).find((c) => c.state === 'ringing');
      if (next) return this._ring(next);
      return this._afterCall();
    }

    /**
     * After-call work as 2.x's `afterCallRule` says: "manual" stays in status 5 until ready(),
     * a number of seconds goes ready by itself then. (The real SDK's default is 15 seconds; the
     * stand-in goes straight back without the option, so pages that do not ask stay quick.)
     */
    _afterCall() {
      const rule = this.options.afterCallRule;
      const seconds = Number(rule);
      if (rule !== 'manual' && !(seconds > 0)) {
        return this._setStatus(this._idleStatus, { reason: 'released' });
      }
      this._setStatus(S.AFTER_CALL, { reason: 'released' });
      if (rule === 'manual') return undefined;
      const run = this._run;
      setTimeout(() => {
        if (run === this._run && this._status === S.AFTER_CALL) this.ready();
      }, seconds * 1000);
      return undefined;
    }

    /** Keep the API's view of the call (its CallContext and the agent's channel). */
    _absorb(call, data) {
      if (data.CallContext) {
        call.callContext = data.CallContext;
        call.channelId = this._ownChannel(data.CallContext) || call.channelId;
      }
    }

    _ownChannel(context) {
      const legs = context.ChannelContexts || [];
      const mine = legs.find((c) => c.UserId && c.UserId === this._login.UserId) || legs[0];
      return mine ? mine.ChannelId : '';
    }

    _detail(call) {
      return {
        caller: call.caller, callee: call.callee, callType: call.callType, jobId: call.jobId,
        callContext: call.callContext,
      };
    }

    _talking(call) { return call.callType === 'OUTBOUND' ? S.OUTBOUND : S.INBOUND; }

    _dropCalls() {
      const had = Array.from(this._calls.values());
      this._calls.clear();
      this._early.clear();
      this._active = null;
      this._dialing = false;
      for (const call of had) this._emit('onCallRelease', { callContext: call.callContext });
      this._render1();
    }

    _setStatus(code, context) {
      if (code === this._status) return this._render1();
      this._lastStatus = this._status;
      this._status = code;
      this._ui.root.dataset.status = String(code);
      this._ui.statusText.textContent = STATUS_TEXT[code] || String(code);
      this._render1();
      return this._emit('onStatusChange', { code, lastCode: this._lastStatus, context: context || {} });
    }

    _emit(name, payload) {
      const handler = this.options[name];
      if (typeof handler !== 'function') return;
      try {
        handler.call(this, payload);
      } catch (err) {
        // A broken page callback must not leave the softphone half-way through a transition.
        console.error('CCC SDK stand-in: ' + name + ' handler failed', err);
      }
    }

    // ---- the UI ----

    _render() {
      const o = this.options;
      let root = typeof o.dom === 'string' ? document.getElementById(o.dom) : o.dom;
      if (!root) root = document.body.appendChild(el('div'));
      const ui = { root };
      root.classList.add('wbsdk');
      root.dataset.generation = GENERATION;
      root.dataset.status = String(this._status);
      root.setAttribute('role', 'region');
      root.setAttribute('aria-label', 'Softphone');
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
      ui.statusText = status.appendChild(el('span', 'wbsdk-status-text', STATUS_TEXT[this._status]));
      ui.note = el('div', 'wbsdk-note');
      ui.note.setAttribute('aria-live', 'polite');
      ui.ringing = el('div', 'wbsdk-ringing');
      ui.ringing.append(el('span', '', 'Incoming call from '));
      ui.ringingCaller = ui.ringing.appendChild(el('strong', 'wbsdk-caller'));
      ui.peer = el('div', 'wbsdk-peer');
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
      ui.signInBtn = actions.appendChild(button('Sign in', () => (
        this._status === S.OFFLINE ? this.logIn() : this.register()), 'wbsdk-signin'));
      ui.answerBtn = actions.appendChild(button('Answer', () => this.answer(), 'wbsdk-answer'));
      ui.hangUpBtn = actions.appendChild(button('Hang up', () => this.hangUp(), 'wbsdk-hangup'));
      ui.holdBtn = actions.appendChild(button('Hold', () => (
        this._status === S.HOLD ? this.callRetrieve() : this.callHold()), 'wbsdk-hold'));
      ui.breakBtn = actions.appendChild(button('Break', () => (
        this._status === S.BREAK ? this.ready() : this.applyForBreak()), 'wbsdk-break'));
      ui.retryBtn = actions.appendChild(button('Reconnect', () => this.restart(), 'wbsdk-retry'));
      ui.retryBtn.hidden = true;
      root.replaceChildren(header, status, ui.note, ui.ringing, ui.peer, dial, actions);
      this._ui = ui;
      this._render1();
      return ui;
    }

    _note(text, stopped) {
      this._ui.note.textContent = text;
      this._ui.retryBtn.hidden = !stopped;
    }

    _render1() {
      const ui = this._ui;
      if (!ui) return;
      const s = this._status;
      const active = this._calls.get(this._active);
      const ringing = s === S.RINGING && active;
      ui.ringing.hidden = !ringing;
      ui.ringingCaller.textContent = ringing ? active.caller : '';
      const verb = { 8: 'Calling ', 9: 'Talking to ', 10: 'Talking to ', 12: 'On hold: ' };
      const peer = active && (active.callType === 'OUTBOUND' ? active.callee : active.caller);
      ui.peer.hidden = !active || Boolean(ringing);
      ui.peer.textContent = active && !ringing ? (verb[s] || '') + peer : '';
      ui.signInBtn.hidden = ![S.UNREGISTERED, S.OFFLINE].includes(s);
      ui.answerBtn.hidden = !ringing;
      ui.hangUpBtn.disabled = !IN_CALL.includes(s);
      ui.holdBtn.hidden = ![S.INBOUND, S.OUTBOUND, S.HOLD].includes(s);
      ui.holdBtn.textContent = s === S.HOLD ? 'Resume' : 'Hold';
      ui.breakBtn.hidden = !IDLE.includes(s);
      ui.breakBtn.textContent = s === S.BREAK ? 'Ready' : 'Break';
      ui.callBtn.disabled = !IDLE.includes(s) || this._dialing;
    }
  }

  // Aliases for names the real SDK may use (its 3.x method list is not public).
  Object.assign(Sdk.prototype, {
    makeCall: Sdk.prototype.call,
    release: Sdk.prototype.hangUp,
    hold: Sdk.prototype.callHold,
    retrieve: Sdk.prototype.callRetrieve,
    unMuteAgent: Sdk.prototype.umMuteAgent,
    takeBreak: Sdk.prototype.applyForBreak,
  });
  Sdk.STATUS = S;
  Sdk.GENERATION = GENERATION;
  if (GENERATION === '3.x') window.CCCWorkbenchSDK = Sdk;
  else window.WorkbenchSdk = Sdk;
})();
