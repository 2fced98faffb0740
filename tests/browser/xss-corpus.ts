// Payloads that try to run script in the portal, each calling `__xss('<id>')` (the browser harness records every
// call, from any frame) or alert. Sources of the shapes: the OWASP XSS filter evasion cheat sheet, DOMPurify's
// mutation-XSS test cases and PortSwigger's XSS cheat sheet (re-written here, one line per technique).
export interface XssPayload {
  id: string;
  html: string;
}

const call = (id: string) => `__xss('${id}')`;

export const XSS_PAYLOADS: readonly XssPayload[] = [
  { id: 'script', html: `<script>${call('script')}</script>` },
  { id: 'img-onerror', html: `<img src=x onerror="${call('img-onerror')}">` },
  { id: 'svg-onload', html: `<svg onload="${call('svg-onload')}"></svg>` },
  { id: 'svg-script', html: `<svg><script>${call('svg-script')}</script></svg>` },
  { id: 'math-href', html: `<math><mtext><a href="javascript:${call('math-href')}">x</a></mtext></math>` },
  { id: 'js-link', html: `<a href="javascript:${call('js-link')}">Klick</a>` },
  { id: 'js-link-entities', html: `<a href="jav&#x09;ascript:${call('js-link-entities')}">Klick</a>` },
  { id: 'js-link-case', html: `<a href=" JaVaScRiPt:${call('js-link-case')}">Klick</a>` },
  { id: 'body-onload', html: `<body onload="${call('body-onload')}">` },
  { id: 'iframe-srcdoc', html: `<iframe srcdoc="<script>parent.${call('iframe-srcdoc')}</script>"></iframe>` },
  { id: 'object-data', html: `<object data="javascript:${call('object-data')}"></object>` },
  { id: 'embed', html: `<embed src="data:text/html,<script>${call('embed')}</script>">` },
  { id: 'meta-refresh', html: `<meta http-equiv="refresh" content="0;url=javascript:${call('meta-refresh')}">` },
  { id: 'base-href', html: `<base href="javascript:${call('base-href')}//">` },
  { id: 'form-action', html: `<form action="javascript:${call('form-action')}"><button>Senden</button></form>` },
  { id: 'style-expression', html: `<div style="background:url(javascript:${call('style-expression')})">x</div>` },
  { id: 'style-tag', html: `<style>@import 'javascript:${call('style-tag')}';</style>` },
  {
    id: 'noscript-mxss',
    html: `<noscript><p title="</noscript><img src=x onerror=${call('noscript-mxss')}>"></noscript>`,
  },
  { id: 'svg-style-mxss', html: `<svg></p><style><a id="</style><img src=1 onerror=${call('svg-style-mxss')}>">` },
  {
    id: 'math-mglyph-mxss',
    html: `<math><mtext><table><mglyph><style><img src=x onerror=${call('math-mglyph-mxss')}></style></mglyph></table></mtext></math>`,
  },
  {
    id: 'details-ontoggle',
    html: `<details open ontoggle="${call('details-ontoggle')}"><summary>x</summary></details>`,
  },
  { id: 'video-onerror', html: `<video><source onerror="${call('video-onerror')}"></video>` },
  { id: 'input-autofocus', html: `<input autofocus onfocus="${call('input-autofocus')}">` },
  { id: 'template', html: `<template><img src=x onerror=${call('template')}></template>` },
  { id: 'comment-break', html: `<!--<img src="--><img src=x onerror=${call('comment-break')}//">` },
  { id: 'cdata', html: `<![CDATA[<]]><img src=x onerror=${call('cdata')}>` },
];

/** The same attacks as one line of plain text (subjects, display names, filenames): must show as text. */
export const XSS_LINES: readonly XssPayload[] = [
  { id: 'line-script', html: `<script>${call('line-script')}</script>` },
  { id: 'line-img', html: `"><img src=x onerror=${call('line-img')}>` },
  { id: 'line-svg', html: `'><svg onload=${call('line-svg')}>` },
];
