/*
 * The softphone page's call log (docs/crm/call-events.md): reports each call's events to the
 * gateway (POST /aliyun/call-events: ringing, answered, ended, after_call), shows the after-call
 * form when a call ends, and lists the agent's recent calls (ListRecentCallDetailRecords, CCC
 * 2.0) with call back and a link to the customer page.
 *
 * softphone.js dispatches a 'ccc-call' DOM event for every SDK call hook ({kind, status, sdk,
 * caller, callee, callType, jobId, callContext}); this script keeps the call in progress from
 * it. The gateway, not this page, says who made the call and when the event happened.
 *
 * After-call work: the page asks the SDK for afterCallRule "manual" when the form is on, so the
 * agent stays in after-call work (status 5) while the form is open; saving it, or
 * softphone.after_call.seconds passing, makes the agent ready again (sdk.ready()).
 */
(function () {
  'use strict';

  const config = JSON.parse(document.getElementById('ccc-config').textContent);
  const log = config.callLog || {};
  const AFTER_CALL = 5;
  // The language and catalog lookup of static/i18n.js, the page's first script: the language
  // softphone.js shows too.
  const t = window.cccI18n.t;
  // A configured outcome the catalogs do not know is shown as configured (t gives the key).
  const outcomeText = (value) => {
    const key = 'ui.calllog.outcome.' + value;
    const text = t(key);
    return text === key ? value : text;
  };

  let reporting = log.events === true;
  let current = null; // {jobId, callType, caller, callee, startedAt, answeredAt, endedAt}
  let pending = null; // the ended call the form is for
  let sdk = null;
  let readyTimer = null;

  function el(tag, props, children) {
    const node = Object.assign(document.createElement(tag), props || {});
    for (const child of children || []) node.append(child);
    return node;
  }

  // ---- the after-call form
  const outcome = el('select', { id: 'ccc-ac-outcome' }, (log.outcomes || []).map(
    (value) => el('option', { value, textContent: outcomeText(value) })));
  const notes = el('textarea', { id: 'ccc-ac-notes', rows: 3, maxLength: 2000 });
  const save = el('button', { type: 'button', id: 'ccc-ac-save', textContent: t('ui.calllog.save') });
  const formStatus = el('p', { className: 'ccc-muted', id: 'ccc-ac-status', role: 'status' });
  const form = el('section', { id: 'ccc-after-call', className: 'ccc-after-call', hidden: true }, [
    el('h2', { textContent: t('ui.calllog.title') }),
    el('p', { id: 'ccc-ac-call', className: 'ccc-muted' }),
    el('label', {}, [t('ui.calllog.outcome') + ' ', outcome]),
    el('label', {}, [t('ui.calllog.notes') + ' ', notes]),
    el('p', { className: 'ccc-buttons' }, [save]), formStatus,
  ]);
  // ---- the recent calls
  const list = el('ul', { id: 'ccc-recent-list', className: 'ccc-recent-list' });
  const refreshList = el('button', { type: 'button', textContent: t('ui.calllog.refresh') });
  const recent = el('section', { id: 'ccc-recent', className: 'ccc-recent', hidden: true }, [
    el('h2', {}, [t('ui.calllog.recent') + ' ', refreshList]), list,
  ]);
  document.body.append(form, recent);

  const who = (call) => (call.callType === 'Outbound' ? call.callee : call.caller);
  const now = () => Date.now() / 1000;

  async function report(type, call, extra) {
    if (!reporting || !call.jobId) return true;
    const body = Object.assign({
      type, jobId: call.jobId, callType: call.callType, caller: call.caller, callee: call.callee,
      startedAt: call.startedAt, answeredAt: call.answeredAt, endedAt: call.endedAt,
      screenPopUrl: window.cccNumbers.popUrl(config.screenPop.url, call), // numbers.js
    }, extra || {});
    try {
      const response = await fetch('/aliyun/call-events', {
        method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
        headers: { 'Content-Type': 'application/json', 'X-CCC-Softphone': '1' },
      });
      if (response.status === 404) reporting = false; // crm_events is off at the gateway
      return response.ok;
    } catch (err) {
      return false; // the gateway did not answer: the call goes on regardless
    }
  }

  function jobOf(detail) {
    const context = detail.callContext || {};
    return detail.jobId || context.JobId || context.jobId || '';
  }

  function onCall(event) {
    const d = event.detail || {};
    if (d.sdk) sdk = d.sdk;
    const jobId = jobOf(d);
    if (d.kind === 'ringing') {
      current = {
        jobId, callType: d.callType, caller: d.caller, callee: d.callee, startedAt: now(),
      };
      report('ringing', current);
    } else if (d.kind === 'answered' && current && (!jobId || jobId === current.jobId)) {
      current.answeredAt = now();
      report('answered', current);
    } else if (d.kind === 'ended' && current && (!jobId || jobId === current.jobId)) {
      current.endedAt = now();
      report('ended', current);
      openForm(current);
      current = null;
    } else if (d.kind === 'status') {
      loadRecent(false);
    }
  }

  function openForm(call) {
    if (!log.form) {
      loadRecent(true); // no form to save first: the ended call may be listed now
      return;
    }
    pending = call;
    document.getElementById('ccc-ac-call').textContent =
      (call.callType === 'Outbound' ? t('ui.calllog.outbound') : t('ui.calllog.inbound')) + ' · ' + who(call);
    notes.value = '';
    outcome.selectedIndex = 0;
    formStatus.textContent = '';
    form.hidden = false;
    clearTimeout(readyTimer);
    if (log.afterCallSeconds > 0) readyTimer = setTimeout(ready, log.afterCallSeconds * 1000);
  }

  /** End after-call work: the agent takes calls again. */
  function ready() {
    clearTimeout(readyTimer);
    if (!sdk || typeof sdk.getStatusCode !== 'function' || typeof sdk.ready !== 'function') return;
    const state = sdk.getStatusCode();
    const code = Number(state !== null && typeof state === 'object' ? state.code : state);
    if (code === AFTER_CALL) {
      try { sdk.ready(); } catch (err) { /* refused in this state: nothing to end */ }
    }
  }

  async function saveForm() {
    if (!pending) return;
    save.disabled = true;
    const ok = await report('after_call', pending, { outcome: outcome.value, notes: notes.value });
    save.disabled = false;
    if (!ok && reporting) {
      formStatus.textContent = t('ui.calllog.failed');
      return;
    }
    pending = null;
    form.hidden = true;
    formStatus.textContent = t('ui.calllog.saved');
    ready();
    loadRecent(true);
  }

  // ---- recent calls (CCC 2.0's ListRecentCallDetailRecords through the gateway's API)
  let loaded = false;

  async function loadRecent(force) {
    if (!log.recent || (loaded && !force)) return;
    loaded = true;
    const request = { InstanceId: config.options.instanceId, PageNumber: 1, PageSize: 10 };
    try {
      const response = await fetch('/aliyun/ccc/api?action=ListRecentCallDetailRecords', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-CCC-Softphone': '1' },
        body: new URLSearchParams({ request: JSON.stringify(request) }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.Code || String(response.status));
      showRecent(((body.Data || {}).List) || []);
    } catch (err) {
      loaded = false;
      recent.hidden = false;
      list.replaceChildren(el('li', { className: 'ccc-muted', textContent: t('ui.calllog.unavailable') }));
    }
  }

  function showRecent(rows) {
    recent.hidden = false;
    if (!rows.length) {
      list.replaceChildren(el('li', { className: 'ccc-muted', textContent: t('ui.calllog.none') }));
      return;
    }
    list.replaceChildren(...rows.map(recentRow));
  }

  function recentRow(row) {
    const inbound = String(row.ContactType || '').toLowerCase() === 'inbound';
    const number = String((inbound ? row.CallingNumber : row.CalledNumber) || '');
    const when = row.StartTime ? new Date(Number(row.StartTime)).toLocaleString() : '';
    const call = el('button', { type: 'button', className: 'ccc-call-back', textContent: t('ui.calllog.call_back') });
    call.addEventListener('click', () => {
      document.dispatchEvent(new CustomEvent('ccc-dial', { detail: { number } }));
    });
    const page = el('a', { href: customerUrl(row, inbound), target: '_top',
      className: 'ccc-customer', textContent: t('ui.calllog.customer') });
    return el('li', { className: 'ccc-recent-call' }, [
      el('span', { className: 'ccc-recent-number', textContent: number }), ' ',
      el('span', { className: 'ccc-muted', textContent: (inbound ? t('ui.calllog.inbound') : t('ui.calllog.outbound'))
        + ' · ' + when + ' · ' + (row.Duration || 0) + t('ui.calllog.seconds') }), ' ', call, ' ', page,
    ]);
  }

  /** The screen-pop template filled as softphone.js fills it: numbers.js's popUrl. */
  function customerUrl(row, inbound) {
    return window.cccNumbers.popUrl(config.screenPop.url, {
      caller: String(row.CallingNumber || ''), callee: String(row.CalledNumber || ''),
      callType: inbound ? 'Inbound' : 'Outbound', jobId: String(row.ContactId || ''),
    });
  }

  save.addEventListener('click', saveForm);
  refreshList.addEventListener('click', () => loadRecent(true));
  document.addEventListener('ccc-call', onCall);
})();
