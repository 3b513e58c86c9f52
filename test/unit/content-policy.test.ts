import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attachment, servedType } from '../../src/http/content-policy.js';

describe('servedType', () => {
  const inline = [
    'image/png',
    'image/jpeg',
    'video/mp4',
    'audio/ogg',
    'text/plain',
    'text/plain; charset=utf-8',
    'TEXT/PLAIN',
    'Image/PNG',
  ];
  for (const declared of inline) {
    it(`keeps ${JSON.stringify(declared)} inline`, () => {
      assert.deepEqual(servedType(declared, 'f.bin'), { contentType: declared, disposition: undefined });
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
  ];
  for (const [name, declared] of download) {
    it(`serves ${name} as an attachment`, () => {
      assert.deepEqual(servedType(declared, 'report.pdf'), {
        contentType: 'application/octet-stream',
        disposition: 'attachment; filename="report.pdf"; filename*=UTF-8\'\'report.pdf',
      });
    });
  }
});

describe('attachment', () => {
  const cases: [fileName: string, header: string][] = [
    ['Grüße "x".txt', `attachment; filename="Gr__e _x_.txt"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22x%22.txt`],
    ['plain.txt', `attachment; filename="plain.txt"; filename*=UTF-8''plain.txt`],
    ['a\\b.txt', `attachment; filename="a_b.txt"; filename*=UTF-8''a%5Cb.txt`],
    ["it's (1)*.txt", `attachment; filename="it's (1)*.txt"; filename*=UTF-8''it%27s%20%281%29%2A.txt`],
    ['line\r\nbreak', `attachment; filename="line__break"; filename*=UTF-8''line%0D%0Abreak`],
  ];
  for (const [fileName, header] of cases) it(JSON.stringify(fileName), () => assert.equal(attachment(fileName), header));

  it('the fallback is printable ASCII without quotes or backslashes, the exact name decodes back', () => {
    const name = 'Ünïcødé 日本 "q" \\ 😀.pdf';
    const header = attachment(name);
    const m = /^attachment; filename="([^"]*)"; filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]+)$/.exec(header);
    assert.ok(m, header);
    assert.match(m[1]!, /^[\x20-\x7e]+$/);
    assert.equal(decodeURIComponent(m[2]!), name);
  });
});
