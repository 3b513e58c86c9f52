/** Library entry: what an app backend or embedding program may use. */
export { signSlotUrl, type SignSlotOptions, type SignedSlot } from './auth/index.js';
export { buildApp, type App, type RunningApp, type AppOptions } from './app.js';
export { loadConfig, resolveConfig, type Config } from './config/index.js';
