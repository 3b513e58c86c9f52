import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { appendTypeOk, completeField, interimHead, interopOf, INTEROP_VERSIONS, parseSfBoolean, parseSfInteger, requestCompletes, uploadLimitField } from '../../src/http/rufh-versions.js';

const headers = (h: Record<string, string>) => (name: string) => h[name];
const v = (n: number) => INTEROP_VERSIONS.get(n)!;

describe('RUFH interop versions table', () => {
  it('supported versions are 3, 5, 6, 8; anything else is a plain request', () => {
    assert.deepEqual([...INTEROP_VERSIONS.keys()], [3, 5, 6, 8]);
    for (const [value, expected] of [['3', 3], ['8', 8], [' 6 ', 6], ['4', undefined], ['99', undefined], ['8.0', undefined], ['-8', undefined], ['', undefined]] as const) {
      assert.equal(interopOf(headers({ 'Upload-Draft-Interop-Version': value }))?.interop, expected, value);
    }
    assert.equal(interopOf(headers({})), undefined);
  });

  it('structured-field booleans and integers are parsed strictly', () => {
    assert.equal(parseSfBoolean('?1'), true);
    assert.equal(parseSfBoolean('?0'), false);
    assert.equal(parseSfBoolean('?1;a'), true, 'RFC 9651 parameters are allowed');
    assert.equal(parseSfBoolean('?0; x=1'), false);
    assert.equal(parseSfBoolean('?2;a'), null);
    assert.equal(parseSfBoolean('true'), null);
    assert.equal(parseSfBoolean(undefined), undefined);
    assert.equal(parseSfInteger('1234'), 1234);
    assert.equal(parseSfInteger('12a'), null);
    assert.equal(parseSfInteger('1234567890123456'), null);
  });

  it('completeness: Upload-Incomplete (interop 3) is the inverse of Upload-Complete', () => {
    const table = [
      [3, { 'Upload-Incomplete': '?0' }, true],
      [3, { 'Upload-Incomplete': '?1' }, false],
      [3, { 'Upload-Complete': '?1' }, undefined],
      [8, { 'Upload-Complete': '?1' }, true],
      [8, { 'Upload-Complete': '?0' }, false],
      [8, { 'Upload-Complete': 'yes' }, null],
      [5, {}, undefined],
    ] as const;
    for (const [n, h, expected] of table) assert.equal(requestCompletes(v(n), headers(h)), expected, `${n} ${JSON.stringify(h)}`);
    assert.deepEqual(completeField(v(3), false), ['Upload-Incomplete', '?1']);
    assert.deepEqual(completeField(v(8), false), ['Upload-Complete', '?0']);
  });

  it('append content type is required from interop 6; Upload-Limit exists from interop 6', () => {
    assert.equal(appendTypeOk(v(5), 'application/offset+octet-stream'), true);
    assert.equal(appendTypeOk(v(6), 'application/partial-upload'), true);
    assert.equal(appendTypeOk(v(8), 'Application/Partial-Upload; x=1'), true);
    assert.equal(appendTypeOk(v(8), undefined), false);
    const limits = { maxSizeBytes: 100, maxAgeS: 59.9 };
    assert.equal(uploadLimitField(v(3), limits), undefined);
    assert.equal(uploadLimitField(v(6), limits), 'max-size=100, max-age=59');
    assert.equal(uploadLimitField(undefined, { maxSizeBytes: 5, maxAgeS: undefined }), 'max-size=5');
  });

  it('the 104 head names the version and Location, and Upload-Limit only where the version has it', () => {
    assert.equal(interimHead(v(8), 'http://h/files/x', { maxSizeBytes: 7, maxAgeS: 10 }), 'HTTP/1.1 104 Upload Resumption Supported\r\nUpload-Draft-Interop-Version: 8\r\nLocation: http://h/files/x\r\nUpload-Limit: max-size=7, max-age=10\r\n\r\n');
    assert.doesNotMatch(interimHead(v(3), 'http://h/files/x', { maxSizeBytes: 7, maxAgeS: 10 }), /Upload-Limit/);
  });
});
