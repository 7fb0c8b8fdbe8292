/*
 * The browser scripts' one language rule and catalog lookup: widget.js, softphone.js and
 * call_log.js all read `window.cccI18n` ({language, t}). The gateway writes both catalogs
 * (ccc_gateway/i18n, keys `ui.*`) and `ui.language` into the slot below where it serves this
 * file: in front of numbers.js and widget.js in /aliyun/softphone/widget.js, and as
 * /aliyun/softphone/i18n.js, the softphone page's first script (softphone/views.py).
 *
 * The language: the configured ui.language, or for `auto` the browser's (navigator.languages:
 * the first Chinese or English one; neither gives English), the rule of the gateway's own
 * pages (ccc_gateway/i18n pick_language).
 */
(function () {
  'use strict';

  // {language, catalogs: {en, zh-CN}}: written in by the gateway (softphone/views.py).
  const I18N = /*ccc:i18n*/null;

  function pickLanguage() {
    const configured = I18N && I18N.language;
    if (configured && configured !== 'auto') return configured;
    const wanted = (navigator.languages && navigator.languages.length)
      ? navigator.languages : [navigator.language || ''];
    for (const tag of wanted) {
      const lower = String(tag).toLowerCase();
      if (lower.startsWith('zh')) return 'zh-CN';
      if (lower.startsWith('en')) return 'en';
    }
    return 'en';
  }

  const language = pickLanguage();
  const catalog = (I18N && I18N.catalogs[language]) || {};

  /** The catalog's text for `key`, `{name}` filled from `values` (the key itself if unknown). */
  function t(key, values) {
    const text = Object.prototype.hasOwnProperty.call(catalog, key) ? catalog[key] : key;
    return text.replace(/\{(\w+)\}/g, (all, name) => (
      values && values[name] !== undefined ? String(values[name]) : all));
  }

  window.cccI18n = Object.freeze({ language, t });
})();
