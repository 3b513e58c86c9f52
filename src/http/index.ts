export { TusEndpoint, SLOT_HEADER, META_SLOT, META_TYPE, type TusDeps } from './tus-endpoint.js';
export { handlePut, type PutDeps } from './put-upload.js';
export { serveDownload } from './downloads.js';
export { corsMiddleware, corsOriginFor } from './cors.js';
export { errorMiddleware } from './errors.js';
export { requestLog } from './request-log.js';
export { decideRange } from './range.js';
export { servedType } from './content-policy.js';
export { adminApi, uploadRoutes, type AdminRoute, type AdminApiDeps } from './admin-api.js';
