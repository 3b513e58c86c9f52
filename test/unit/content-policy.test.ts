import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DOWNLOAD_CSP, attachment, servedType } from '../../src/http/content-policy.js';
import { storableContentType } from '../../src/storage/published-store.js';

describe('servedType', () => {
  const inline: [declared: string, served: string][] = [
    ['image/png', 'image/png'],
    ['image/jpeg', 'image/jpeg'],
    ['video/mp4', 'video/mp4'],
    ['audio/ogg', 'audio/ogg'],
    ['text/plain', 'text/plain'],
    ['text/plain; charset=utf-8', 'text/plain; charset=utf-8'],
    ['text/plain;charset="UTF-8"', 'text/plain; charset=utf-8'],
    ['TEXT/PLAIN', 'text/plain'],
    ['Image/PNG', 'image/png'],
    [' image/png ', 'image/png'],
    ['video/mp4; codecs="avc1.42E01E"', 'video/mp4'],
  ];
  for (const [declared, served] of inline) {
    it(`keeps ${JSON.stringify(declared)} inline as ${served}`, () => {
      assert.deepEqual(servedType(declared, 'f.bin'), { contentType: served, disposition: undefined });
    });
  }

  const download: [name: string, declared: string][] = [
    ['text/html', 'text/html'],
    ['text/html with charset', 'text/html; charset=utf-8'],
    ['application/pdf', 'application/pdf'],
    ['application/octet-stream', 'application/octet-stream'],
    ['application/javascript', 'application/javascript'],
    ['text/plain look-alike', 'text/plainx'],
    ['text/xml', 'text/xml'],
    ['image type with non-ASCII', 'image/pngé'],
    ['image type with CR LF (header injection)', 'image/png\r\nX-Evil: 1'],
    ['empty', ''],
    // Issue 9.3: a prefix check saw images here; Chromium rendered the HTML.
    ['a list of types', 'image/png, text/html'],
    ['a second type as a parameter', 'image/jpeg;text/html'],
    ['video then html', 'video/mp4, text/html'],
    ['a trailing semicolon', 'image/png;'],
    ['a parameter without value', 'image/png; charset'],
    ['SVG', 'image/svg+xml'],
    ['SVG with charset', 'image/svg+xml; charset=utf-8'],
    ['XHTML', 'application/xhtml+xml'],
    ['XML under image', 'image/xml'],
    ['HTML under video', 'video/html'],
    ['JavaScript under audio', 'audio/javascript'],
    ['no subtype', 'image/'],
    ['no slash', 'image'],
    ['two slashes', 'image/png/html'],
  ];
  for (const [name, declared] of download) {
    it(`serves ${name} as an attachment`, () => {
      assert.deepEqual(servedType(declared, 'report.pdf'), {
        contentType: 'application/octet-stream',
        disposition: 'attachment; filename="report.pdf"',
      });
    });
  }

  it('the download CSP forbids scripts, forms and framing and sandboxes any document', () => {
    for (const directive of ["default-src 'none'", 'sandbox', "form-action 'none'", "frame-ancestors 'none'"]) {
      assert.ok(DOWNLOAD_CSP.split(/;\s*/).includes(directive), directive);
    }
  });
});

describe('attachment', () => {
  const cases: [fileName: string, header: string][] = [
    ['Grüße "x".txt', `attachment; filename="Gr__e \\"x\\".txt"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22x%22.txt`],
    ['plain.txt', `attachment; filename="plain.txt"`],
    ["it's (1)*.txt", `attachment; filename="it's (1)*.txt"`],
    ['line\r\nbreak', `attachment; filename="line__break"; filename*=UTF-8''line%0D%0Abreak`],
    // content-disposition keeps the base name only: a backslash separates directories on Windows.
    ['a\\b.txt', `attachment; filename="b.txt"`],
    ['日本.pdf', `attachment; filename="__.pdf"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.pdf`],
    // A right-to-left override would show "a\u202Egnp.html" as "almth.png" in a save dialog.
    ['a\u202egnp.html', `attachment; filename="a_gnp.html"`],
    ['x\u2066y\u2069\u200f.exe', `attachment; filename="x_y__.exe"`],
  ];
  for (const [fileName, header] of cases) it(JSON.stringify(fileName), () => assert.equal(attachment(fileName), header));

  it('the fallback is printable ASCII (quotes escaped), the exact name decodes back', () => {
    const name = 'Ünïcødé 日本 "q" 😀.pdf';
    const header = attachment(name);
    const m = /^attachment; filename="((?:[^"\\]|\\.)*)"; filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]+)$/.exec(header);
    assert.ok(m, header);
    assert.match(m[1]!, /^[\x20-\x7e]+$/);
    assert.equal(decodeURIComponent(m[2]!), name);
  });
});

describe('storableContentType', () => {
  const kept = ['image/png', 'text/plain; charset=utf-8', 'video/mp4; codecs="avc1.42E01E"', ' image/png ', 'text/html', 'application/x-thing'];
  for (const declared of kept) it(`keeps ${JSON.stringify(declared)}`, () => assert.equal(storableContentType(declared), declared));

  // Not a media type, or not printable ASCII: never an S3 header (the SDK refuses CR LF, S3 the signature over non-ASCII).
  const octet = ['', 'image/p\u00e9ng', 'image/jp\xc3\xa9g', 'text/plain; name="\u00e9"', 'text/html\r\nX-Evil: 1', 'image/png\t', 'image/png, text/html', 'png', 'image/png; a'];
  for (const declared of octet) {
    it(`stores ${JSON.stringify(declared)} as application/octet-stream`, () => assert.equal(storableContentType(declared), 'application/octet-stream'));
  }
});
