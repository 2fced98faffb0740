// A message's HTML body made safe to show: sanitize-html with a strict allow-list, shown only inside a sandboxed frame
// (no scripts, opaque origin) under its own CSP, so the sanitiser is the first of three walls.
//
// Why sanitize-html and not DOMPurify + jsdom: sanitize-html is an allow-list by construction (tags, attributes per
// tag, URL schemes per tag, CSS properties with value patterns) with a small dependency tree and no emulated DOM;
// DOMPurify's edge is namespace confusion between HTML, SVG and MathML, and we allow none of SVG, MathML or the
// raw-text elements (style, script, textarea, xmp, noscript, iframe, title), so the output is plain elements with
// quoted, escaped attributes and escaped text: nothing a browser can parse into something else (mutation XSS). The
// tests parse every output with parse5, the WHATWG parser browsers implement, and check it there.
import sanitizeHtml from 'sanitize-html';

export interface InlineImage {
  /** Content-ID without angle brackets. */
  cid: string;
  contentType: string;
  content: Buffer;
}

export interface SafeHtml {
  html: string;
  /** Images, style sheets or other content from elsewhere were removed (the page says "externe Inhalte blockiert"). */
  remoteContentBlocked: boolean;
}

/** Inline images only of these types (raster: no SVG, which is a document of its own). */
export const INLINE_IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
export const MAX_INLINE_IMAGE_BYTES = 2 * 1024 * 1024;
export const MAX_INLINE_IMAGES_BYTES = 8 * 1024 * 1024;
/** Deeper nesting is cut (its text kept): browsers and the sanitiser recurse. */
const NESTING_LIMIT = 200;
/**
 * More elements open at once than this and the HTML is not rendered at all (HtmlTooComplexError). htmlparser2, under
 * sanitize-html, keeps its open elements in an array it unshifts and searches at every tag, so its time grows with
 * tags × open elements: 80,000 unclosed <div> took 4 s, the 4 MB the page renders 7 minutes of a blocked event loop.
 * Bounded here, it is linear. Browsers stop nesting at 512 too, and the output keeps NESTING_LIMIT levels.
 */
export const MAX_OPEN_ELEMENTS = 512;

export class HtmlTooComplexError extends Error {
  readonly code = 'PORTAL_HTML_TOO_COMPLEX';
}

const ALLOWED_TAGS = [
  'a',
  'abbr',
  'address',
  'b',
  'bdi',
  'blockquote',
  'br',
  'caption',
  'center',
  'cite',
  'code',
  'col',
  'colgroup',
  'dd',
  'del',
  'dfn',
  'div',
  'dl',
  'dt',
  'em',
  'figcaption',
  'figure',
  'font',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'hr',
  'i',
  'img',
  'ins',
  'kbd',
  'li',
  'mark',
  'ol',
  'p',
  'pre',
  'q',
  's',
  'samp',
  'small',
  'span',
  'strike',
  'strong',
  'sub',
  'sup',
  'table',
  'tbody',
  'td',
  'tfoot',
  'th',
  'thead',
  'tr',
  'tt',
  'u',
  'ul',
  'var',
];

/** Disallowed elements whose content goes too: not text to a reader, or raw text to a browser. */
const DROPPED_WITH_CONTENT = [
  'script',
  'style',
  'textarea',
  'option',
  'select',
  'xmp',
  'noscript',
  'noembed',
  'noframes',
  'iframe',
  'frame',
  'frameset',
  'object',
  'applet',
  'title',
  'template',
  'svg',
  'math',
  'plaintext',
  'canvas',
  'audio',
  'video',
];

const ALIGN = { name: 'align', values: ['left', 'right', 'center', 'justify'] };
const VALIGN = { name: 'valign', values: ['top', 'middle', 'bottom', 'baseline'] };
const TABLE_CELL = ['colspan', 'rowspan', 'width', 'height', 'bgcolor', 'nowrap', 'scope', ALIGN, VALIGN];

const ALLOWED_ATTRIBUTES: sanitizeHtml.IOptions['allowedAttributes'] = {
  '*': ['style', 'title', 'lang', { name: 'dir', values: ['ltr', 'rtl', 'auto'] }],
  a: ['href', 'rel', 'target'],
  img: ['src', 'alt', 'width', 'height'],
  table: ['width', 'border', 'cellpadding', 'cellspacing', 'bgcolor', ALIGN],
  tr: ['bgcolor', ALIGN, VALIGN],
  td: TABLE_CELL,
  th: TABLE_CELL,
  col: ['span', 'width', ALIGN, VALIGN],
  colgroup: ['span', 'width', ALIGN, VALIGN],
  div: [ALIGN],
  p: [ALIGN],
  h1: [ALIGN],
  h2: [ALIGN],
  h3: [ALIGN],
  h4: [ALIGN],
  h5: [ALIGN],
  h6: [ALIGN],
  font: ['color', 'size', 'face'],
  ol: ['start', 'type', 'reversed'],
  li: ['value'],
  blockquote: ['cite'],
  q: ['cite'],
  del: ['cite', 'datetime'],
  ins: ['cite', 'datetime'],
  hr: ['width', 'size', 'noshade', ALIGN],
};

// CSS: a few properties, each value by pattern. No pattern admits "(" except rgb(), nor "\" or "/": so no url(),
// expression(), image-set(), var(), attr(), escapes or comments.
const LENGTH = String.raw`(?:0|-?\d{1,4}(?:\.\d{1,3})?(?:px|pt|em|rem|ex|%))`;
const LENGTHS = new RegExp(`^${LENGTH}(?: ${LENGTH}){0,3}$`);
const LENGTH_OR_AUTO = new RegExp(`^(?:${LENGTH}|auto)$`);
const COLOUR = [
  /^#[0-9a-f]{3,8}$/i,
  /^[a-z]{3,20}$/i,
  // The alpha's blanks inside its group: `\s*(?:,…)?\s*` read a run of blanks not before `)` in every split of the
  // run (quadratic: a style of 100,000 blanks took 5 s of the page).
  /^rgba?\(\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*(?:,\s*(?:0|1|0?\.\d{1,3})\s*)?\)$/i,
];
const BORDER = [
  new RegExp(`^(?:${LENGTH} )?(?:none|solid|dashed|dotted|double)(?: (?:#[0-9a-f]{3,8}|[a-z]{3,20}))?$`, 'i'),
  /^none$/,
];

const ALLOWED_STYLES: sanitizeHtml.IOptions['allowedStyles'] = {
  '*': {
    color: COLOUR,
    'background-color': COLOUR,
    'text-align': [/^(?:left|right|center|justify|start|end)$/],
    'vertical-align': [/^(?:top|middle|bottom|baseline|sub|super|text-top|text-bottom)$/],
    'font-weight': [/^(?:normal|bold|bolder|lighter|[1-9]00)$/],
    'font-style': [/^(?:normal|italic|oblique)$/],
    'font-size': [LENGTH_OR_AUTO, /^(?:xx-small|x-small|small|medium|large|x-large|xx-large|smaller|larger)$/],
    'font-family': [/^[\w\s,'"-]{1,200}$/],
    'line-height': [/^(?:normal|\d{1,2}(?:\.\d{1,2})?)$/, LENGTH_OR_AUTO],
    'text-decoration': [/^(?:none|underline|line-through|overline)(?: (?:underline|line-through|overline))*$/],
    'white-space': [/^(?:normal|nowrap|pre|pre-wrap|pre-line)$/],
    margin: [LENGTHS],
    'margin-top': [LENGTH_OR_AUTO],
    'margin-right': [LENGTH_OR_AUTO],
    'margin-bottom': [LENGTH_OR_AUTO],
    'margin-left': [LENGTH_OR_AUTO],
    padding: [LENGTHS],
    'padding-top': [LENGTH_OR_AUTO],
    'padding-right': [LENGTH_OR_AUTO],
    'padding-bottom': [LENGTH_OR_AUTO],
    'padding-left': [LENGTH_OR_AUTO],
    width: [LENGTH_OR_AUTO],
    height: [LENGTH_OR_AUTO],
    'max-width': [LENGTH_OR_AUTO],
    border: BORDER,
    'border-top': BORDER,
    'border-right': BORDER,
    'border-bottom': BORDER,
    'border-left': BORDER,
    'border-collapse': [/^(?:collapse|separate)$/],
  },
};

/** An absolute http(s) or mailto URL, normalised; anything else (relative, other schemes, odd bytes) is undefined. */
export function safeLinkTarget(value: string): string | undefined {
  const trimmed = value.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a URL with controls or white space inside is refused
  if (!/^(?:https?:\/\/|mailto:)/i.test(trimmed) || /[\u0000-\u0020\u007f-\u009f]/.test(trimmed)) return undefined;
  try {
    const url = new URL(trimmed);
    return ['http:', 'https:', 'mailto:'].includes(url.protocol) ? url.href : undefined;
  } catch {
    return undefined;
  }
}

// Attributes that make a browser fetch something by themselves (not a link someone has to follow).
const FETCHING_ATTRIBUTES = ['src', 'srcset', 'background', 'poster', 'data', 'dynsrc', 'lowsrc', 'codebase'];
const REMOTE = /^\s*(?:[a-z][a-z0-9+.-]*:|\/\/|\\\\)/i;

function fetchesRemotely(tag: string, attribs: Record<string, string>): boolean {
  for (const [name, value] of Object.entries(attribs)) {
    const key = name.toLowerCase();
    if (FETCHING_ATTRIBUTES.includes(key) && REMOTE.test(value) && !/^\s*(?:cid|data):/i.test(value)) return true;
    if (tag === 'link' && key === 'href') return true;
    if (key === 'style' && /url\s*\(|image-set\s*\(|@import/i.test(value)) return true;
  }
  return false;
}

/**
 * Style sheets in the body that load something (they are dropped with the element; this only notices them). No `<`
 * in the opening tag: with `[^>]*` every "<style" rescanned to the end, quadratic (240 KB of "<style": 10 s).
 */
const REMOTE_IN_STYLE_ELEMENT = /<style[^<>]*>[^<]*(?:url\s*\(|@import)/i;

/**
 * The HTML of a message body reduced to the allow-list. `inlineImages` are the message's parts a `cid:` image may
 * show (raster types, size-limited, made data: URLs); every other image source is removed with its element (its alt
 * text stays). Idempotent: sanitising the output again with the same images gives the same output. Throws
 * HtmlTooComplexError for HTML with more than MAX_OPEN_ELEMENTS elements open at once.
 */
export function sanitizeMessageHtml(html: string, inlineImages: readonly InlineImage[] = []): SafeHtml {
  const dataUrls = inlineDataUrls(inlineImages);
  const ownDataUrls = new Set(dataUrls.values());
  let remoteContentBlocked = REMOTE_IN_STYLE_ELEMENT.test(html);
  // htmlparser2 reports every element it opens and every one it closes (implied, void and unmatched ones too), so
  // this is its stack's length.
  let openElements = 0;

  const imageSource = (src: string | undefined): string | undefined => {
    if (!src) return undefined;
    const trimmed = src.trim();
    if (ownDataUrls.has(trimmed)) return trimmed;
    const cid = /^cid:(.+)$/i.exec(trimmed)?.[1];
    if (cid) return dataUrls.get(normaliseCid(safeDecode(cid)));
    return undefined;
  };

  const output = sanitizeHtml(html, {
    allowedTags: ALLOWED_TAGS,
    allowedAttributes: ALLOWED_ATTRIBUTES,
    allowedStyles: ALLOWED_STYLES,
    parseStyleAttributes: true,
    allowedClasses: {},
    disallowedTagsMode: 'discard',
    nonTextTags: DROPPED_WITH_CONTENT,
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: ['data'] },
    allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
    allowProtocolRelative: false,
    selfClosing: ['br', 'hr', 'img', 'col'],
    enforceHtmlBoundary: false,
    nestingLimit: NESTING_LIMIT,
    onOpenTag: (tag, attribs) => {
      if (++openElements > MAX_OPEN_ELEMENTS) {
        throw new HtmlTooComplexError(`more than ${MAX_OPEN_ELEMENTS} HTML elements open at once`);
      }
      if (fetchesRemotely(tag, attribs)) remoteContentBlocked = true;
    },
    onCloseTag: () => {
      openElements--;
    },
    transformTags: {
      a: (tagName, attribs) => {
        const href = attribs.href === undefined ? undefined : safeLinkTarget(attribs.href);
        const kept: Record<string, string> = {};
        for (const name of ['title', 'lang', 'dir', 'style'])
          if (attribs[name] !== undefined) kept[name] = attribs[name];
        if (!href) return { tagName: 'span', attribs: kept };
        return { tagName, attribs: { ...kept, href, rel: 'noopener noreferrer', target: '_blank' } };
      },
      img: (tagName, attribs) => {
        const src = imageSource(attribs.src);
        const { src: _src, srcset: _srcset, ...rest } = attribs;
        if (src) return { tagName, attribs: { ...rest, src } };
        // No picture: a span with its alt text instead (an <img> without src shows a broken frame).
        return { tagName: 'span', attribs: {}, text: attribs.alt ?? '' };
      },
    },
  });
  return { html: output, remoteContentBlocked };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function normaliseCid(cid: string): string {
  return cid.trim().replace(/^<|>$/g, '').trim().toLowerCase();
}

/** cid → data: URL for the images that may be shown inline (by type and size, in order, up to the total). */
function inlineDataUrls(images: readonly InlineImage[]): Map<string, string> {
  const urls = new Map<string, string>();
  let total = 0;
  for (const image of images) {
    const type = image.contentType.toLowerCase();
    if (!INLINE_IMAGE_TYPES.includes(type) || image.content.length > MAX_INLINE_IMAGE_BYTES) continue;
    if (total + image.content.length > MAX_INLINE_IMAGES_BYTES) continue;
    const cid = normaliseCid(image.cid);
    if (!cid || urls.has(cid)) continue;
    total += image.content.length;
    urls.set(cid, `data:${type};base64,${image.content.toString('base64')}`);
  }
  return urls;
}
