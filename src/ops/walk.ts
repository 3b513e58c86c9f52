/** Walking a directory tree of the data dir without holding it in memory (shared with storage/). */
export { walkFiles, type WalkedFile } from '../storage/index.js';
