export { ByteLimit } from './byte-limit.js';
