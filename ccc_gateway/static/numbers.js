/*
 * Phone numbers in CRM pages (docs/softphone.md, "Click-to-call"): one place for what a number
 * looks like, used by the widget (click-to-call where CRMs put numbers) and by the softphone
 * page (the screen-pop URL's caller variables). The gateway serves this file in front of
 * widget.js at /aliyun/softphone/widget.js, with CLICK_TO_CALL filled in from
 * softphone.click_to_call; served alone (/aliyun/softphone/numbers.js) it watches nothing.
 *
 * window.cccNumbers:
 * - variables(caller): {caller, caller_digits, caller_national, caller_e164}
 * - popUrl(template, detail): the screen-pop template with every variable filled in
 * - watch(dial, label): click-to-call on `selectors`, phone inputs and (detect) numbers in
 *   text; dial(raw) gets the number as written, and the widget's dial path (tel: links, the
 *   confirmation in the softphone) does the rest. `label`: the phone inputs' Call button's
 *   accessible name, in the agent's language (the widget's catalogs).
 *
 * The detector never changes the CRM's DOM: a single-page CRM's framework owns its text nodes
 * and breaks when someone splits them (the Google Translate problem). Numbers are marked with
 * the CSS Custom Highlight API (ranges, no elements), and a click is matched to a number by
 * the caret position under the pointer. Phone inputs get one floating Call button of ours,
 * outside the CRM's elements.
 */
(function () {
  'use strict';

  if (window.cccNumbers) return;
  const CLICK_TO_CALL = /*CCC_CLICK_TO_CALL*/null;

  // Chinese mobiles (+86/0086/86 optional), landlines with their area code (0xx or +86 xx),
  // E.164. Digits may be grouped by spaces or hyphens; never part of a longer word or number.
  const DEFAULT_PATTERN = '(?<![\\w+])(?:(?:\\+|00)?86[ -]?)?1[3-9]\\d(?:[ -]?\\d{4}){2}(?![\\w])'
    + '|(?<![\\w+])(?:\\(0\\d{2,3}\\)|0\\d{2,3})[ -]?\\d{3,4}[ -]?\\d{4}(?![\\w])'
    + '|(?<![\\w+])(?:\\+|00)86[ -]?[2-9]\\d{1,2}[ -]?\\d{3,4}[ -]?\\d{4}(?![\\w])'
    + '|(?<![\\w+])\\+[1-9](?:[ -]?\\d){6,14}(?![\\w])';
  const MOBILE = /^1[3-9]\d{9}$/;
  const CHINA = /^(?:\+86|0086)/;
  const TEMPLATE_VARIABLE = /\{(caller|caller_digits|caller_national|caller_e164|callee|callType|jobId)\}/g;
  // Where a number is never made callable: code, form fields, editable text, links, buttons.
  const SKIP = 'script,style,noscript,template,textarea,input,select,option,a,button,svg,'
    + '[contenteditable]:not([contenteditable="false" i]),#ccc-softphone,#ccc-numbers';
  const FIELD = 'input,textarea,select,button,[contenteditable]:not([contenteditable="false" i])';
  const PHONE_INPUT = 'input[type=tel],input[name*=phone i],input[name*=mobile i],'
    + 'input[id*=phone i],input[id*=mobile i],input[autocomplete~=tel i]';
  const HIGHLIGHT = 'ccc-number';
  // What the detector did, for the bench (bench/numbers_bench.py) and for curious operators.
  const stats = {
    scans: 0, lastScanMs: 0, scanWallMs: 0, longestSliceMs: 0, batches: 0, lastBatchMs: 0,
    numbers: 0,
  };
  const SLICE_MS = 8; // the first scan's work between two pauses (a frame is 16 ms)

  // ---- what a number is ----

  /** The caller as CCC gave it, and in the forms a CRM search may want. */
  function variables(raw) {
    const caller = String(raw == null ? '' : raw).trim();
    const digits = caller.replace(/\D/g, '');
    const plus = caller.startsWith('+');
    let national = digits;
    let e164 = digits;
    let rest = null; // the number after China's country code, when it has one
    if (CHINA.test(caller.replace(/[\s-]/g, ''))) rest = digits.replace(/^(?:00)?86/, '');
    else if (!plus && /^86/.test(digits) && (MOBILE.test(digits.slice(2))
      || /^[2-9]\d{8,10}$/.test(digits.slice(2)))) rest = digits.slice(2);
    if (rest !== null) {
      const local = rest.replace(/^0/, '');
      national = MOBILE.test(local) ? local : '0' + local; // landlines keep their trunk 0
      e164 = '+86' + local;
    } else if (plus) {
      e164 = '+' + digits;
    } else if (digits.startsWith('00')) {
      e164 = '+' + digits.slice(2);
    } else if (MOBILE.test(digits) || /^0[1-9]\d{8,10}$/.test(digits)) {
      e164 = '+86' + digits.replace(/^0/, ''); // a Chinese number written nationally
    }
    return { caller, caller_digits: digits, caller_national: national, caller_e164: e164 };
  }

  /**
   * The screen-pop URL: every variable encoded, and never `.` or `..` (the URL parser would
   * take those, even as %2E, for a path step and the pop would land on another CRM page).
   */
  function popUrl(template, detail) {
    const values = Object.assign(variables(detail.caller), detail); // {caller} as received
    return String(template).replace(TEMPLATE_VARIABLE, (_, name) => {
      const value = values[name] == null ? '' : String(values[name]);
      return /^\.{1,2}$/.test(value) ? '' : encodeURIComponent(value);
    });
  }

  // ---- the detector: numbers in text nodes ----

  function compile(source) {
    try { return new RegExp(source, 'g'); } catch (err) { return new RegExp(DEFAULT_PATTERN, 'g'); }
  }

  function skipped(element) {
    return element.matches(SKIP); // [contenteditable] there: its whole subtree is rejected
  }

  /** Ranges over the numbers in `node`'s text (a text node). */
  function numbersIn(node, pattern) {
    const ranges = [];
    const text = node.data;
    if (text.length < 5 || !/\d{2}/.test(text)) return ranges; // most text: one cheap test
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      if (m[0] === '') { pattern.lastIndex += 1; continue; }
      const range = new Range();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      ranges.push(range);
    }
    return ranges;
  }

  /** A walk over `root`'s text nodes that never enters a skipped element. */
  function walkerOver(root) {
    return document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, {
      acceptNode: (node) => (node.nodeType === Node.ELEMENT_NODE && skipped(node)
        ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
    });
  }

  /** Every text node under `root` that may hold a callable number. */
  function textNodes(root, each) {
    const start = root.nodeType === Node.TEXT_NODE ? root.parentElement : root;
    if (!start || (start.closest && start.closest(SKIP))) return;
    if (root.nodeType === Node.TEXT_NODE) { each(root); return; }
    const walker = walkerOver(root);
    for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
      if (node.nodeType === Node.TEXT_NODE) each(node);
    }
  }

  function makeDetector(pattern) {
    const supported = typeof window.Highlight === 'function' && window.CSS && CSS.highlights;
    const highlight = supported ? new window.Highlight() : null;
    if (highlight) CSS.highlights.set(HIGHLIGHT, highlight);
    const byNode = new Map(); // text node -> its ranges in the highlight

    function mark(node) {
      const old = byNode.get(node);
      if (old) for (const range of old) highlight.delete(range);
      const ranges = numbersIn(node, pattern);
      if (ranges.length) byNode.set(node, ranges); else byNode.delete(node);
      for (const range of ranges) highlight.add(range);
    }

    function forget() {
      // Ranges of text nodes that left the page: the detector must not keep them alive.
      for (const [node, ranges] of byNode) {
        if (node.isConnected) continue;
        for (const range of ranges) highlight.delete(range);
        byNode.delete(node);
      }
    }

    /**
     * The first scan, in slices of SLICE_MS with a pause between them: a long CRM list takes
     * longer than a frame in all (bench/RESULTS.md), and the page must stay responsive. What
     * changes meanwhile is the observer's; marking a node twice is harmless.
     */
    function scanInSlices() {
      const started = performance.now();
      let walker = walkerOver(document.body);
      let busy = 0;
      function slice() {
        const sliceStart = performance.now();
        if (!walker.currentNode.isConnected) walker = walkerOver(document.body); // it moved
        let node = walker.nextNode();
        for (let n = 1; node !== null; node = walker.nextNode(), n += 1) {
          if (node.nodeType === Node.TEXT_NODE) mark(node);
          if (n % 256 === 0 && performance.now() - sliceStart > SLICE_MS) break;
        }
        const spent = performance.now() - sliceStart;
        busy += spent;
        stats.longestSliceMs = Math.max(stats.longestSliceMs, spent);
        if (node !== null) { setTimeout(slice, 0); return; }
        stats.scans += 1;
        stats.lastScanMs = busy;
        stats.scanWallMs = performance.now() - started;
        stats.numbers = highlight.size;
      }
      slice();
    }

    // DOM updates of a single-page CRM: collected per animation frame, each subtree once.
    let pending = new Set();
    let removals = false;
    function flush() {
      const started = performance.now();
      const roots = pending;
      pending = new Set();
      if (removals) forget();
      removals = false;
      for (const root of roots) if (root.isConnected) textNodes(root, mark);
      stats.batches += 1;
      stats.lastBatchMs = performance.now() - started;
      stats.numbers = highlight.size;
    }
    const observer = highlight ? new MutationObserver((records) => {
      if (pending.size === 0 && !removals) requestAnimationFrame(flush);
      for (const record of records) {
        if (record.type === 'characterData') pending.add(record.target);
        for (const node of record.addedNodes) pending.add(node);
        if (record.removedNodes.length) removals = true;
      }
    }) : null;

    return {
      start() {
        if (!highlight) return; // no way to mark without touching the DOM: clicks still work
        observer.observe(document.body, { childList: true, subtree: true, characterData: true });
        scanInSlices();
      },
    };
  }

  /** The number under the pointer in a text node (detect mode), as written, or null. */
  function numberAt(event, pattern) {
    let node = null;
    let offset = 0;
    if (typeof document.caretPositionFromPoint === 'function') {
      const position = document.caretPositionFromPoint(event.clientX, event.clientY);
      if (position) { node = position.offsetNode; offset = position.offset; }
    } else if (typeof document.caretRangeFromPoint === 'function') {
      const range = document.caretRangeFromPoint(event.clientX, event.clientY);
      if (range) { node = range.startContainer; offset = range.startOffset; }
    }
    if (!node || node.nodeType !== Node.TEXT_NODE || !node.parentElement
      || node.parentElement.closest(SKIP) || node.parentElement.isContentEditable) return null;
    for (const range of numbersIn(node, pattern)) {
      if (offset < range.startOffset || offset > range.endOffset) continue;
      // The caret is also found beside the text: the pointer must be on the number itself.
      for (const rect of range.getClientRects()) {
        if (event.clientX >= rect.left && event.clientX <= rect.right
          && event.clientY >= rect.top && event.clientY <= rect.bottom) return range.toString();
      }
    }
    return null;
  }

  // ---- phone inputs: one floating Call button ----

  function makeInputButton(dial, selectors, label) {
    const holder = document.createElement('div');
    holder.id = 'ccc-numbers';
    const button = holder.appendChild(document.createElement('button'));
    button.type = 'button';
    button.className = 'ccc-numbers-call';
    button.textContent = '📞';
    button.title = label;
    button.setAttribute('aria-label', label);
    holder.hidden = true;
    let input = null;
    button.addEventListener('mousedown', (event) => event.preventDefault()); // keep the focus
    button.addEventListener('click', () => { if (input && input.value.trim()) dial(input.value); });
    function show(target) {
      input = target;
      const box = target.getBoundingClientRect();
      holder.style.top = Math.round(box.top + (box.height - 28) / 2) + 'px';
      holder.style.left = Math.round(box.right + 4) + 'px';
      holder.hidden = false;
    }
    function hide() { holder.hidden = true; input = null; }
    document.addEventListener('focusin', (event) => {
      const target = event.target;
      if (target instanceof HTMLInputElement && (target.matches(PHONE_INPUT)
        || (selectors && target.matches(selectors)))) show(target);
      else if (!holder.contains(target)) hide();
    });
    document.addEventListener('focusout', (event) => {
      if (event.target === input && !holder.contains(event.relatedTarget)) hide();
    });
    window.addEventListener('scroll', () => { if (input) show(input); }, true);
    document.body.append(holder);
  }

  // ---- putting it together ----

  function selectorList(selectors) {
    // One bad selector (the CRM changed its markup, a typo) must not disable the others.
    return selectors.filter((selector) => {
      try { document.createDocumentFragment().querySelector(selector); return true; } catch (err) {
        console.warn('ccc-gateway: softphone.click_to_call.selectors: not a CSS selector', selector);
        return false;
      }
    }).join(',');
  }

  function styleSelectors(selectors) {
    // A constructed sheet: no <style> element for the CRM's CSP to refuse.
    if (!selectors || typeof CSSStyleSheet !== 'function' || !('adoptedStyleSheets' in document)) return;
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(':is(' + selectors + ') { cursor: pointer; text-decoration: underline dotted; }');
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    } catch (err) { /* only the look is lost */ }
  }

  function watch(dial, label) {
    const config = CLICK_TO_CALL || {};
    const selectors = selectorList(Array.isArray(config.selectors) ? config.selectors : []);
    const pattern = compile(config.pattern || DEFAULT_PATTERN);
    styleSelectors(selectors);
    document.addEventListener('click', (event) => {
      if (event.defaultPrevented || event.button !== 0 || !(event.target instanceof Element)) return;
      if (event.target.closest('#ccc-softphone, #ccc-numbers, a[href^="tel:" i], [data-ccc-call]')
        || event.target.closest(FIELD)) return; // typing into a field is not asking to call
      const element = selectors ? event.target.closest(selectors) : null;
      const raw = element ? element.textContent : (config.detect ? numberAt(event, pattern) : null);
      if (raw === null || raw.trim() === '') return;
      event.preventDefault(); // the number is the softphone's: not also the row's own click
      event.stopPropagation();
      dial(raw);
    }, true);
    makeInputButton(dial, selectors, label);
    if (config.detect) makeDetector(pattern).start();
  }

  window.cccNumbers = Object.freeze({ variables, popUrl, watch, stats, DEFAULT_PATTERN });
})();
