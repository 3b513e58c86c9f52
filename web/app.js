/*
 * The upload page: one tus upload per file, through a signed slot (in parallel parts joined by
 * the server when config.json `parallelUploads` > 1).
 * Slots come from the operator's signing endpoint (config.json `signingEndpoint`: POST
 * {name, size, type} -> {url, getUrl?}) or from slot URLs pasted by the user.
 * Fingerprints of unfinished uploads stay in localStorage (tus-js-client's URL storage), so
 * after a reload, choosing the same file again continues from the server's offset.
 */
'use strict';

(function () {
  const tus = window.tus;
  const $ = (id) => document.getElementById(id);
  const SIDE_KEY = 'hfs-upload-page::';
  /** Files smaller than parallelUploads parts of this size go in one part. */
  const MIN_PART_BYTES = 1024 * 1024;
  const entries = [];
  let cfg;

  const MESSAGES = {
    ERR_SIGNATURE_MISSING: 'The slot URL carries no signature. Paste the full URL, including everything after "?".',
    ERR_SIGNATURE_INVALID: 'The upload slot was refused: its signature does not match (a changed or mistyped URL, or a slot for another file size).',
    ERR_SIGNATURE_EXPIRED: 'The upload slot has expired. Get a new slot URL.',
    ERR_SIZE_MISMATCH: 'The upload slot is for a file of another size.',
    ERR_TYPE_MISMATCH: 'The upload slot is for a file of another type.',
    ERR_SLOT_MISSING: 'This upload needs a slot URL.',
    ERR_FILE_EXISTS: 'A file already exists at this slot: each slot takes one file. Get a new slot URL.',
    ERR_BAD_PATH: 'The slot URL is malformed.',
    ERR_GONE: 'The file at this slot was deleted; the slot cannot be used again. Get a new slot URL.',
    ERR_UPLOAD_CHECKSUM_MISMATCH: 'The uploaded bytes do not match the file\'s declared checksum; nothing was published.',
  };

  function tooLarge() {
    return `The file is larger than this server accepts (limit ${formatBytes(cfg.maxUploadSize)}).`;
  }

  function formatBytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
  }

  // --- side storage: slot and download URL of each tus upload URL, for resuming after reload ---
  function saveSide(uploadUrl, data) {
    try {
      localStorage.setItem(SIDE_KEY + uploadUrl, JSON.stringify(data));
    } catch (_) {
      /* private mode: resuming after reload then simply starts anew */
    }
  }
  function loadSide(uploadUrl) {
    try {
      return JSON.parse(localStorage.getItem(SIDE_KEY + uploadUrl) || 'null');
    } catch (_) {
      return null;
    }
  }
  function dropSide(uploadUrl) {
    try {
      localStorage.removeItem(SIDE_KEY + uploadUrl);
    } catch (_) {
      /* ignore */
    }
  }

  // --- rendering ---
  function render(entry) {
    const { el, state } = entry;
    el.dataset.state = state;
    el.querySelector('.status').textContent = entry.message;
    const pause = el.querySelector('.pause');
    const resume = el.querySelector('.resume');
    pause.hidden = state !== 'uploading';
    resume.hidden = !(state === 'paused' || (state === 'failed' && entry.canResume));
    const link = el.querySelector('.link');
    if (state === 'done' && entry.getUrl) {
      link.hidden = false;
      link.href = entry.getUrl;
      link.textContent = entry.getUrl;
    }
  }

  function setState(entry, state, message, canResume) {
    entry.state = state;
    entry.message = message;
    entry.canResume = Boolean(canResume);
    render(entry);
  }

  function newEntry(file) {
    const el = document.createElement('li');
    el.className = 'upload';
    el.dataset.name = file.name;
    el.innerHTML =
      '<div class="head"><span class="name"></span><span class="size"></span></div>' +
      '<progress max="1" value="0"></progress>' +
      '<div class="status" role="status"></div>' +
      '<div class="actions"><button type="button" class="pause" hidden>Pause</button>' +
      '<button type="button" class="resume" hidden>Resume</button>' +
      '<a class="link" hidden target="_blank" rel="noopener noreferrer"></a></div>';
    el.querySelector('.name').textContent = file.name;
    el.querySelector('.size').textContent = formatBytes(file.size);
    $('uploads').appendChild(el);
    const entry = { file, el, state: 'waiting', message: 'Preparing…', upload: null, getUrl: null, canResume: false };
    el.querySelector('.pause').addEventListener('click', () => pause(entry));
    el.querySelector('.resume').addEventListener('click', () => resume(entry));
    entries.push(entry);
    render(entry);
    return entry;
  }

  function showProgress(entry, sent, total) {
    const progress = entry.el.querySelector('progress');
    progress.max = total || 1;
    progress.value = sent;
    const pct = total ? Math.floor((sent / total) * 100) : 100;
    entry.el.dataset.sent = String(sent);
    setState(entry, 'uploading', `${formatBytes(sent)} of ${formatBytes(total)} (${pct} %)`);
  }

  // --- slots ---
  async function slotFor(file, type) {
    if (cfg.signingEndpoint) {
      let res;
      try {
        res = await fetch(cfg.signingEndpoint, {
          method: 'POST',
          credentials: 'include', // the operator's endpoint authenticates its own users
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ name: file.name, size: file.size, type }),
        });
      } catch (_) {
        throw new Error('Could not reach the signing service for an upload slot (network error or a refused origin).');
      }
      if (!res.ok) throw new Error(`The signing service refused an upload slot (HTTP ${res.status}).`);
      const body = await res.json().catch(() => ({}));
      if (typeof body.url !== 'string') throw new Error('The signing service answered without a slot URL.');
      return { url: body.url, getUrl: typeof body.getUrl === 'string' ? body.getUrl : body.url.split('?')[0] };
    }
    const area = $('slots');
    const lines = area.value.split('\n').map((l) => l.trim());
    const index = lines.findIndex((l) => l !== '');
    if (index === -1) throw new Error('No slot URL for this file: paste a slot URL above, then add the file again.');
    const url = lines[index];
    lines.splice(index, 1);
    area.value = lines.filter((l) => l !== '').join('\n');
    if (!/^https?:\/\//.test(url)) throw new Error('The pasted slot is not an http(s) URL.');
    return { url, getUrl: url.split('?')[0] };
  }

  // --- errors ---
  function errorCode(res) {
    try {
      return JSON.parse(res.getBody() || '{}').code || '';
    } catch (_) {
      return '';
    }
  }

  /** tus-js-client's rule (retry network errors, 5xx, 409, 423), except our final 409. */
  function shouldRetry(err) {
    const res = err && err.originalResponse;
    const status = res ? res.getStatus() : 0;
    if (!navigator.onLine) return false;
    if (status === 409 && errorCode(res) === 'ERR_FILE_EXISTS') return false; // the slot is taken for good
    return !(status >= 400 && status < 500) || status === 409 || status === 423;
  }

  function describeError(err) {
    const res = err && err.originalResponse;
    const status = res ? res.getStatus() : 0;
    if (!status) {
      if (!navigator.onLine) return { offline: true };
      return {
        message: 'The upload server could not be reached (network error, or it does not accept uploads from this page\'s origin).',
        canResume: true,
      };
    }
    const code = errorCode(res);
    let serverMessage = '';
    try {
      serverMessage = JSON.parse(res.getBody() || '{}').message || '';
    } catch (_) {
      /* not our JSON */
    }
    if (code === 'ERR_TOO_LARGE' || status === 413) return { message: tooLarge(), canResume: false };
    if (MESSAGES[code]) return { message: MESSAGES[code], canResume: false };
    if (status === 404 || status === 410) {
      return { message: 'The unfinished upload is gone from the server (expired). Add the file again with a new slot.', canResume: false };
    }
    if (status >= 500 || status === 423 || status === 408) {
      return { message: `The server could not take the upload right now (HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}). Press Resume to try again.`, canResume: true };
    }
    return { message: `The server refused the upload (HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}).`, canResume: false };
  }

  // --- uploads ---
  async function addFile(file) {
    const entry = newEntry(file);
    const type = file.type || 'application/octet-stream';
    if (cfg.maxUploadSize && file.size > cfg.maxUploadSize) {
      setState(entry, 'failed', tooLarge());
      return;
    }
    // Large files go in parallel parts when the server is configured so (tus concatenation);
    // partials carry the type too, since v2/token slots sign it.
    const parts = cfg.parallelUploads > 1 && file.size >= cfg.parallelUploads * MIN_PART_BYTES ? cfg.parallelUploads : 1;
    const upload = new tus.Upload(file, {
      endpoint: new URL(cfg.tusEndpoint, location.href).href,
      chunkSize: cfg.chunkSize,
      parallelUploads: parts,
      metadataForPartialUploads: { filetype: type },
      retryDelays: [0, 1000, 3000, 5000, 10000],
      metadata: { filename: file.name, filetype: type },
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onShouldRetry: shouldRetry,
      onUploadUrlAvailable() {
        saveSide(upload.url, { slotUrl: entry.slotUrl, getUrl: entry.getUrl });
      },
      onProgress(sent, total) {
        showProgress(entry, sent, total);
      },
      onSuccess() {
        dropSide(upload.url);
        entry.el.querySelector('progress').value = entry.el.querySelector('progress').max;
        setState(entry, 'done', `Uploaded ${formatBytes(file.size)}.`);
        refreshEarlier();
      },
      onError(err) {
        const d = describeError(err);
        if (d.offline) setState(entry, 'offline', 'Connection lost. The upload continues from where it stopped when you are back online.', true);
        else setState(entry, 'failed', d.message, d.canResume);
      },
    });
    entry.upload = upload;

    const previous = await upload.findPreviousUploads().catch(() => []);
    if (previous.length > 0) {
      previous.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
      const prev = previous[0];
      const side = loadSide(prev.uploadUrl) || {};
      entry.slotUrl = side.slotUrl || null;
      entry.getUrl = side.getUrl || null;
      // The slot is only needed if the server lost the upload and it must be created again.
      if (entry.slotUrl) upload.options.headers = slotHeaders(entry.slotUrl, file);
      upload.resumeFromPreviousUpload(prev);
      entry.resumed = true;
      entry.el.dataset.resumed = 'true';
      setState(entry, 'uploading', 'Continuing an earlier upload…');
      upload.start();
      return;
    }
    let slot;
    try {
      slot = await slotFor(file, type);
    } catch (e) {
      setState(entry, 'failed', e.message);
      return;
    }
    entry.slotUrl = slot.url;
    entry.getUrl = slot.getUrl;
    upload.options.headers = slotHeaders(slot.url, file);
    setState(entry, 'uploading', 'Starting…');
    upload.start();
  }

  /** Every request names the slot; partial uploads also need the whole file's size, which size-signed slots bind. */
  function slotHeaders(slotUrl, file) {
    return { 'Upload-Slot': slotUrl, 'Upload-Slot-Length': String(file.size) };
  }

  function pause(entry) {
    if (!entry.upload || entry.state !== 'uploading') return;
    entry.upload.abort();
    setState(entry, 'paused', `Paused at ${formatBytes(Number(entry.el.dataset.sent || 0))}. Press Resume to continue.`);
  }

  function resume(entry) {
    if (!entry.upload) return;
    setState(entry, 'uploading', 'Resuming…');
    entry.upload.start(); // with a known upload URL, tus-js-client asks the server for its offset first
  }

  async function refreshEarlier() {
    const storage = tus.defaultOptions.urlStorage;
    const list = $('earlier-list');
    list.textContent = '';
    let all = [];
    try {
      all = await storage.findAllUploads();
    } catch (_) {
      /* no storage */
    }
    const active = new Set(entries.filter((e) => e.upload && e.upload.url && e.state !== 'done').map((e) => e.upload.url));
    const earlier = all.filter((u) => !active.has(u.uploadUrl));
    $('earlier').hidden = earlier.length === 0;
    for (const u of earlier) {
      const li = document.createElement('li');
      const name = (u.metadata && u.metadata.filename) || 'unnamed file';
      li.textContent = `${name} (${formatBytes(Number(u.size) || 0)}) `;
      const forget = document.createElement('button');
      forget.type = 'button';
      forget.textContent = 'Forget';
      forget.addEventListener('click', async () => {
        await storage.removeUpload(u.urlStorageKey);
        dropSide(u.uploadUrl);
        refreshEarlier();
      });
      li.appendChild(forget);
      list.appendChild(li);
    }
  }

  function addFiles(files) {
    for (const file of files) addFile(file).then(refreshEarlier, (e) => showPageError(e));
  }

  function showPageError(e) {
    const p = $('page-error');
    p.hidden = false;
    p.textContent = String((e && e.message) || e);
  }

  function updateNetwork() {
    $('network').hidden = navigator.onLine;
    if (!navigator.onLine) return;
    for (const entry of entries) if (entry.state === 'offline') resume(entry);
  }

  async function init() {
    if (!tus || !tus.isSupported) {
      showPageError('This browser cannot upload files with this page.');
      return;
    }
    cfg = await (await fetch('page-assets/config.json', { cache: 'no-cache' })).json();
    if (cfg.signingEndpoint) {
      $('slot-signing').hidden = false;
      $('signing-origin').textContent = new URL(cfg.signingEndpoint, location.href).origin;
    } else {
      $('slot-paste').hidden = false;
    }
    const input = $('files');
    input.addEventListener('change', () => {
      addFiles([...input.files]);
      input.value = '';
    });
    const drop = $('drop');
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      if (e.dataTransfer && e.dataTransfer.files) addFiles([...e.dataTransfer.files]);
    });
    window.addEventListener('online', updateNetwork);
    window.addEventListener('offline', updateNetwork);
    updateNetwork();
    await refreshEarlier();
    document.body.dataset.ready = 'true';
  }

  init().catch(showPageError);
})();
