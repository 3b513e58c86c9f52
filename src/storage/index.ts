export type { PublishedStore, PublishedFile, PublishMeta, PublishOutcome } from './published-store.js';
export { FilePublishedStore } from './file-published-store.js';
export { TusFileStore } from './tus-file-store.js';
export { MemoryLocker } from './memory-locker.js';
