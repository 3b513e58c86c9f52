export { decodeSlotPath, encodeSlotPath } from './slot-path.js';
export { sign, signedMessage, signatureMatches, SCHEME_PRECEDENCE, DEFAULT_CONTENT_TYPE, type SignInput } from './hmac-schemes.js';
export { authorizeSlot, pickScheme, slotPolicyFromConfig, type AuthorizedSlot, type SlotDecision, type SlotPolicy, type SlotRequest } from './slot-auth.js';
export { signSlotUrl, type SignSlotOptions, type SignedSlot } from './sign-slot.js';
export { newUploadId } from './upload-id.js';
export { readStoredSecret, resolveSecret, SECRET_FILE, type SecretSource } from './secret-file.js';
